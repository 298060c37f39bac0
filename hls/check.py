"""Check a build's PL code on x86 against the simulator, bit for bit (``check_hls``).

The build's HLS files (``build/hls/``) are compiled with g++ (``-std=c++20 -Wall -Werror``)
against the x86 headers of :mod:`codesign.hls` (``hls/include``: ``hls::stream``, ``ap_int``);
the kernel translation unit ``codesign_pl.cpp`` is compiled on its own, and a generated harness
runs each PL function on files:

- each GEMM layer's A tiler/replicator on the simulator's input tensor, compared with the A tiles
  the simulator multiplies (``codesign.kinds.gemm.execute``), replayed per N tile;
- its B mover on the packed ``tempus.b/1`` weight, compared with the tiles of
  :func:`codesign.ir.layouts.unpack_b`, replayed per M tile;
- its weight tiler on the row-major weight, compared with the build's packed weight file;
- its C untiler on the simulator's output cut into chain tiles, compared with that output;
- each PL unit (a vector unit, and any other layer whose kind emitted ``hls/<ident>.h``: data
  movers of transpose/movement layers, nonlinear/rownorm units placed on the PL) on the
  simulator's tensors, compared with its outputs (part ``pl:<kind>[:<fn>]``).
- each batched product's A tiler, B tiler (activation B in its read order -> ``tempus.b/1``
  tiles), control records and C untiler, head after head (:func:`expected_batched`).

- the sequencer (the kernel the host launches) for one whole inference, launch after launch of
  :func:`codesign.hls.pl.stages` (each Host partition run between two launches by onnxruntime
  on the arena, as the host program does: :func:`run_host_partition`), with the AIE block
  replaced by the C tiles of the simulator's GEMM outputs: each launch must send as many control
  records per chain as the graph iterations the host program runs for it; starting from an
  arena that holds only the data files and the inputs, every tensor it writes must equal the
  simulator's, and the
  A, B and ``rtp_<chain>`` control streams it sends must be every GEMM layer's, every batched
  product's and every AIE-placed nonlinear layer's
  (:func:`codesign.hls.aie_nonlinear.expected_streams`), in layer order; the C streams it reads
  are the simulator's outputs of them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from codesign.aie.emit import CONTROL_HEADER_WORDS, port_bytes
from codesign.codegen.check import CheckResult
from codesign.errors import BuildError, CodesignError
from codesign.hls import aie_nonlinear, pl
from codesign.ir.data import decode, stored_bytes
from codesign.ir.layouts import a_tile_order, c_tile_from_order, c_tile_order, unpack_b
from codesign.ir.plan import DataFile, GemmLayer, Plan, VectorLayer

#: what the PL checks run: g++ flags of the kernels (no warning passes)
CXXFLAGS = ("-std=c++20", "-Wall", "-Werror", "-O1")
PART = "pl"


def include_dir() -> Path:
    """The x86 header set (``ap_int.h``, ``hls_stream.h``) shipped with codesign."""
    return Path(str(resources.files("codesign.hls") / "include"))


def gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        raise FileNotFoundError("g++ not found on PATH: the PL check compiles the kernels with it")
    return gxx


def compile_cpp(
    src: Path, out: Path, hls_dir: Path, obj_only: bool = False, extra: tuple[str, ...] = ()
) -> str | None:
    """Compile ``src`` with the kernel flags (``extra``: more include directories, libraries
    and linker flags); return None on success, else g++'s first lines."""
    cmd = [gxx(), *CXXFLAGS, "-I", str(include_dir()), "-I", str(hls_dir)]
    cmd += ["-c", str(src), "-o", str(out)] if obj_only else [str(src), *extra, "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode:
        return " ".join(r.stderr.strip().splitlines()[:3]) or f"g++ exited {r.returncode}"
    return None


def arena_bytes(build: Path, plan: Plan, tensors: dict[str, np.ndarray]) -> bytearray:
    """The arena after the inference: every data file and every tensor at its region."""
    regions, size = pl.arena(plan)
    arena = bytearray(size)
    for f in pl.data_files(plan):
        blob = plan.data.get(f.sha256)
        if blob is None:
            from codesign.sim.build_files import read_bytes

            blob = read_bytes(build, f)  # no-follow, the plan's size and sha256
        r = regions[f.path]
        arena[r.offset : r.offset + len(blob)] = blob
    for t in plan.tensors:
        if t.name in tensors and t.name in regions:
            r = regions[t.name]
            arena[r.offset : r.offset + r.nbytes] = stored_bytes(tensors[t.name], t.dtype)
    return arena


def _beats(tiles: np.ndarray, bits: int, nbytes: int | None = None) -> bytes:
    """Tiles [count, elements] of stored-bytes rows packed into beats, each tile zero-padded to
    ``nbytes`` (a whole buffer port of the block: :func:`codesign.aie.emit.port_bytes`), or to a
    whole beat when not given."""
    beat = bits // 8
    rows = tiles.reshape(tiles.shape[0], -1)
    size = -(-rows.shape[1] // beat) * beat if nbytes is None else nbytes
    if rows.shape[1] > size:
        raise ValueError(f"a tile of {rows.shape[1]} bytes exceeds its {size}-byte buffer port")
    return np.pad(rows, ((0, 0), (0, size - rows.shape[1]))).tobytes()


def _as_bytes(x: np.ndarray, dtype: str) -> np.ndarray:
    """An array's stored bytes, shaped [..., bytes per element] flattened on the last axis."""
    raw = np.frombuffer(stored_bytes(x, dtype), dtype=np.uint8)
    return raw.reshape(*x.shape[:-1], -1) if x.ndim else raw


def expected_a(plan: Plan, g: GemmLayer, a: np.ndarray) -> dict[str, bytes]:
    """The A streams of layer ``g`` for input ``a``, from the simulator's tile order."""
    from codesign.sim import numerics

    s = g.schedule
    dtype = "bf16" if g.dtype == "bf16" else plan.value_spec(g.inputs[0]).dtype
    src = numerics.to_bf16(a.reshape(s.M, s.K)) if g.dtype == "bf16" else a.reshape(s.M, s.K)
    return _a_streams(plan, s, src, dtype)


def _a_streams(plan: Plan, s, src: np.ndarray, dtype: str) -> dict[str, bytes]:
    """The A streams of one M x K operand ``src`` (values as the cores read them, stored as
    ``dtype``) on schedule ``s``: per (M tile, N tile, K pass) the tile of each position, in the
    cores' ``tempus.a/1`` order (:func:`codesign.ir.layouts.a_tile_order`), one whole A port
    each. The AIE check feeds its harness these very bytes (:mod:`codesign.aie.check`)."""
    bits = pl.beat_bits(plan)
    L, m, k = s.block.cascade, s.tile.m, s.tile.k
    A = np.zeros((s.padded_M, s.padded_K), dtype=src.dtype)
    A[: s.M, : s.K] = src
    At = A.reshape(s.m_tiles, m, s.k_passes, L, k).transpose(0, 2, 3, 1, 4)  # [i, p, l, m, k]
    out = {}
    for l in range(L):  # noqa: E741
        tiles = np.stack(
            [
                _as_bytes(a_tile_order(At[i, p, l], s), dtype).reshape(-1)
                for i in range(s.m_tiles)
                for _ in range(s.n_tiles)
                for p in range(s.k_passes)
            ]
        )
        out[pl.a_name(l)] = _beats(tiles, bits, port_bytes(plan).a)
    return out


def expected_b(
    plan: Plan, g: GemmLayer, packed: np.ndarray, dtype: str | None = None
) -> dict[str, bytes]:
    """The B streams of layer ``g`` from its packed weight (tiles of unpack_b, per M tile);
    ``dtype``: how the elements are stored (the weight's unless given)."""
    s, bits = g.schedule, pl.beat_bits(plan)
    dtype = g.weight.dtype if dtype is None else dtype
    B = unpack_b(packed, s)  # [n_tile, k_pass, chain, core, k, n] (k x n row-major per core)
    _, mk, mn = s.native
    out = {}
    for c in range(s.block.chains):
        for l in range(s.block.cascade):  # noqa: E741
            tiles = []
            for _ in range(s.m_tiles):
                for j in range(s.n_tiles):
                    for p in range(s.k_passes):
                        t = B[j, p, c, l]  # back to native blocks: the stream's own order
                        blocks = t.reshape(s.tile.k // mk, mk, s.tile.n // mn, mn)
                        blocks = blocks.transpose(0, 2, 1, 3).reshape(-1)
                        tiles.append(_as_bytes(blocks, dtype).reshape(-1))
            out[pl.b_name(c, l)] = _beats(np.stack(tiles), bits, port_bytes(plan).b)
    return out


def c_streams(plan: Plan, g: GemmLayer, y: np.ndarray) -> dict[str, bytes]:
    """The C streams that produce output ``y`` of layer ``g`` (padding as zeros)."""
    return _c_streams(plan, g.schedule, y, plan.tensor(g.outputs[0]).dtype, pl.c_names(plan, g))


def _c_streams(plan: Plan, s, y: np.ndarray, dtype: str, names: list[str]) -> dict[str, bytes]:
    """The C streams that carry one M x N output ``y`` (stored as ``dtype``) on schedule ``s``:
    per (M tile, N tile) one whole C buffer (the last core's asynchronous output buffer leaves
    after the tile's last K pass): the tile (``tempus.c/1`` order:
    :func:`codesign.ir.layouts.c_tile_order`) at byte 0, then zeros (the PL drops them). ``names``:
    the C PLIOs of the layer's kernel group, chain by chain (:func:`pl.c_names`)."""
    bits = pl.beat_bits(plan)
    Y = np.zeros((s.padded_M, s.padded_N), dtype=y.dtype)
    Y[: s.M, : s.N] = y.reshape(s.M, s.N)
    C, m, n = s.block.chains, s.tile.m, s.tile.n
    Yt = Y.reshape(s.m_tiles, m, s.n_tiles, C, n).transpose(3, 0, 2, 1, 4)  # [c, i, j, m, n]
    out = {}
    for c in range(C):
        tiles = np.stack(
            [
                _as_bytes(c_tile_order(Yt[c, i, j], s), dtype).reshape(-1)
                for i in range(s.m_tiles)
                for j in range(s.n_tiles)
            ]
        )
        out[names[c]] = _beats(tiles, bits, port_bytes(plan).c)
    return out


def output_of_c_streams(plan: Plan, s, streams: dict[str, bytes], size: int) -> bytes:
    """The row-major M x N output (``size`` bytes per element) that C streams ``streams`` (each
    chain's whole C buffer per (M tile, N tile), as :func:`_c_streams` lays them out and the last
    cores send them) carry: the tile of each, read in ``tempus.c/1`` order
    (:func:`codesign.ir.layouts.c_tile_from_order`), padding dropped, as the C untiler does."""
    C, m, n = s.block.chains, s.tile.m, s.tile.n
    port = port_bytes(plan).c
    steps = s.m_tiles * s.n_tiles
    chains = []
    for c in range(C):
        raw = np.frombuffer(streams[pl.c_name(c)], dtype=np.uint8)
        if raw.size != steps * port:
            raise ValueError(f"{pl.c_name(c)}: {raw.size} bytes, expected {steps * port}")
        last = raw.reshape(s.m_tiles, s.n_tiles, port)[:, :, : m * n * size]
        els = last.reshape(s.m_tiles, s.n_tiles, m * n, size).transpose(3, 0, 1, 2)
        chains.append(c_tile_from_order(els, s))  # [size, i, j, m, n]
    Y = np.stack(chains, axis=3)  # [size, i, j, c, m, n]
    Y = Y.transpose(1, 4, 2, 3, 5, 0).reshape(s.padded_M, s.padded_N, size)
    return np.ascontiguousarray(Y[: s.M, : s.N]).tobytes()


def _units(plan: Plan, hls_dir: Path) -> list[tuple[int, object]]:
    """(plan layer number, layer) of every PL unit of the build: each layer that runs on the PL
    (unit "pl") whose kind emitted ``hls/<ident>.h`` (vector units, data movers, nonlinear
    units), whose ``<ident>_run(arena)`` the sequencer calls. Layers of the AIE (GEMMs, batched
    products) are checked by their own parts."""
    return [
        (i, layer)
        for i, layer in enumerate(plan.layers)
        if isinstance(layer, VectorLayer)
        or (layer.unit == "pl" and (hls_dir / f"{pl.ident(i, layer.name)}.h").is_file())
    ]


def unit_part(layer: object) -> str:
    """The check row's part of a PL unit: ``pl:<kind>`` and ``:<fn>`` when the kind has
    functions (``pl:vector:add``, ``pl:movement:gather``, ``pl:transpose``)."""
    fn = getattr(layer, "fn", None)
    return f"{PART}:{layer.kind}" + (f":{fn}" if fn else "")  # type: ignore[attr-defined]


def _harness(plan: Plan, hls_dir: Path) -> str:
    from codesign.kinds.batched_matmul import BatchedMatMulLayer, pl_context

    headers = sorted(p.name for p in hls_dir.glob("l*_*.h"))
    units = {i for i, _ in _units(plan, hls_dir)}
    gemms, vectors, batched = [], [], []
    for i, layer in enumerate(plan.layers):
        if i in units:
            vectors.append(pl.ident(i, layer.name))
        elif isinstance(layer, GemmLayer):
            gemms.append(pl.gemm_context(plan, i, layer))
        elif isinstance(layer, BatchedMatMulLayer):
            batched.append(pl_context(plan, i, layer))
    return pl.render(
        "harness.cpp.j2", headers=headers, gemms=gemms, vectors=vectors, batched=batched
    ).decode()


def _run(exe: Path, *args: object) -> str | None:
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, check=False)
    return None if r.returncode == 0 else (r.stderr.strip() or f"exit {r.returncode}")


def compare_bytes(got: bytes, want: bytes) -> str:
    """'' when equal, else where the first difference is."""
    if got == want:
        return ""
    if len(got) != len(want):
        return f"{len(got)} bytes, expected {len(want)}"
    first = next(i for i, (x, y) in enumerate(zip(got, want, strict=True)) if x != y)
    return f"first difference at byte {first}"


def check_hls(build: Path, plan: Plan, tensors: dict[str, np.ndarray]) -> list[CheckResult]:
    """Compile the build's HLS kernels with g++ and run each PL function on the simulator's
    tensors (``tensors``: every tensor of :meth:`codesign.sim.functional.Simulator.run_all`);
    one row per (layer, function), ``matched`` only when every byte equals the simulator's.

    A build without ``hls/`` files gives one row that says so (not compiled). Raises
    FileNotFoundError when g++ is not installed.
    """
    from codesign.kinds.batched_matmul import BatchedMatMulLayer

    build = Path(build)
    hls_dir = build / "hls"
    kernel = hls_dir / "codesign_pl.cpp"
    if not kernel.is_file():
        return [CheckResult("(build)", PART, False, False, f"{kernel}: no PL kernel in the build")]
    rows: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="codesign-hls-") as tmp:
        work = Path(tmp)
        err = compile_cpp(kernel, work / "codesign_pl.o", hls_dir, obj_only=True)
        if err is None:
            rows.append(_check_sequencer(work, plan, tensors, build, hls_dir))
        else:
            rows.append(CheckResult("(sequencer)", f"{PART}:sequencer", False, False, err))
        (work / "harness.cpp").write_text(_harness(plan, hls_dir))
        exe = work / "harness"
        err = compile_cpp(work / "harness.cpp", exe, hls_dir)
        units = {i for i, _ in _units(plan, hls_dir)}
        if err is not None:
            for i, layer in enumerate(plan.layers):
                if isinstance(layer, GemmLayer | BatchedMatMulLayer) or i in units:
                    rows.append(CheckResult(layer.name, PART, False, False, err))
            return rows
        arena = arena_bytes(build, plan, tensors)
        regions, _ = pl.arena(plan)
        for i, layer in enumerate(plan.layers):
            p = pl.ident(i, layer.name)
            if i in units:
                rows.append(_check_vector(exe, work, layer, p, arena, regions))
            elif isinstance(layer, GemmLayer):
                rows += _check_gemm(exe, work, plan, layer, p, arena, regions, tensors)
            elif isinstance(layer, BatchedMatMulLayer):
                rows += _check_batched(exe, work, plan, layer, i, p, arena, regions, tensors)
    return rows


def _dense_b(g: GemmLayer, arena: bytes | bytearray, regions: dict) -> np.ndarray:
    """The dense ``tempus.b/1`` weight stream of ``g`` from its region(s) of ``arena``: an
    N:M-compressed weight is expanded as the N:M expander does (kinds.gemm.dense_b)."""
    from codesign.kinds.gemm import dense_b

    wr = regions[g.weight.path]
    values = decode(bytes(arena[wr.offset : wr.offset + wr.nbytes]), g.weight)
    index = None
    if g.sparse is not None:
        ir = regions[g.sparse.index.path]
        index = decode(bytes(arena[ir.offset : ir.offset + ir.nbytes]), g.sparse.index)
    return dense_b(values, index, g)


class _ArenaData:
    """Decoded data files read from the arena bytes (what ``_epilogue_words`` asks for)."""

    def __init__(self, plan: Plan, full: bytes | bytearray) -> None:
        self.regions, _ = pl.arena(plan)
        self.full = full

    def data(self, f):
        r = self.regions[f.path]
        return decode(bytes(self.full[r.offset : r.offset + r.nbytes]), f)


def expected_control(
    plan: Plan, g: GemmLayer, index: int, zp: int, full: bytes | bytearray
) -> dict[str, bytes]:
    """The control records of GEMM layer ``g`` (plan layer ``index``) on each chain's
    ``rtp_<chain>`` stream: per (M tile, N tile, K pass) the words layer, pass, passes, za, then
    the chain's epilogue words of the N tile, zero-padded (docs/pl_streams.md). The epilogue
    words are the AIE harness's (:func:`codesign.aie.check._epilogue_words`), cut per tile as the
    AIE kernels read them (:func:`codesign.aie.emit.epilogue_layout`)."""
    from codesign.aie.check import _epilogue_words
    from codesign.aie.emit import epilogue_layout

    s = g.schedule
    C, n = s.block.chains, s.tile.n
    words = pl.epilogue_words(plan)
    table = np.frombuffer(_epilogue_words(_ArenaData(plan, full), g), dtype="<i4")
    ep = epilogue_layout(g)
    out: dict[str, bytes] = {}
    for c, name in enumerate(pl.rtp_names(plan)):
        records = []
        for _i in range(s.m_tiles):
            for j in range(s.n_tiles):
                epi = np.zeros(words, dtype=np.int64)
                col0, base = (j * C + c) * n, 0
                for off, whole in (
                    (ep.bias, True),
                    (ep.bias_hi, True),
                    (ep.colsum, True),
                    (ep.mult, ep.per_channel),
                    (ep.shift, ep.per_channel),
                ):
                    if off is None:
                        continue
                    width = n if whole else 1
                    src = table[base + col0 : base + col0 + n] if whole else table[base : base + 1]
                    epi[off : off + width] = src
                    base += s.padded_N if whole else 1
                for p in range(s.k_passes):
                    records.append(np.concatenate([[index, p, s.k_passes, zp], epi]))
        flat = np.concatenate(records) if records else np.zeros(0, dtype=np.int64)
        out[name] = flat.astype(np.int64).astype("<u4").tobytes()
    return out


def expected_batched(plan: Plan, g, index: int, tensors: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Every stream of batched product ``g`` (plan layer ``index``,
    :mod:`codesign.kinds.batched_matmul`), head after head, from the simulator's tensors: per
    head the A streams of ``A'`` and the B streams of ``B'`` packed in ``tempus.b/1`` order, as
    the cores read them (re-centred, or rounded to bf16), the C streams of the head's output
    ``Y'`` and the control records (header, then the tile's columns of the head's column sums,
    its rows of the row sums of ``a - za``, and zb: the kind's ``epilogue_table``)."""
    from codesign.ir.layouts import pack_b
    from codesign.kinds.batched_matmul import (
        CORE_DTYPE,
        core_operands,
        epilogue_layout,
        epilogue_table,
        perm_or_identity,
    )

    s = g.schedule
    C, m, n = s.block.chains, s.tile.m, s.tile.n
    core = CORE_DTYPE[g.dtype]
    A, B, za, zb = core_operands(plan, g, tensors[g.inputs[0]], tensors[g.inputs[1]])
    y = np.asarray(tensors[g.outputs[0]])
    Y = np.transpose(y, np.argsort(perm_or_identity(g.out_perm, y.ndim)))
    Y = Y.reshape(g.batch, s.M, s.N)
    y_dtype = plan.tensor(g.outputs[0]).dtype
    words = pl.epilogue_words(plan)
    ep = epilogue_layout(g)
    out: dict[str, bytes] = {}

    def add(streams: dict[str, bytes]) -> None:
        _append(out, streams)

    for h in range(g.batch):
        add(_a_streams(plan, s, A[h], core))
        add(expected_b(plan, g, pack_b(B[h], s), core))
        add(_c_streams(plan, s, Y[h], y_dtype, pl.c_names(plan, g)))
        table = epilogue_table(g, A[h], B[h], za, zb).astype(np.int64)
        for c, name in enumerate(pl.rtp_names(plan)):
            records = []
            for i in range(s.m_tiles):
                for j in range(s.n_tiles):
                    epi = np.zeros(words, dtype=np.int64)
                    if ep.colsum is not None:
                        col0 = (j * C + c) * n
                        epi[ep.colsum : ep.colsum + n] = table[col0 : col0 + n]
                        epi[ep.rowsum : ep.rowsum + m] = table[s.padded_N + i * m :][:m]
                        epi[ep.zb] = table[s.padded_N + s.padded_M]
                    for p in range(s.k_passes):
                        records.append(np.concatenate([[index, p, s.k_passes, za], epi]))
            add({name: np.concatenate(records).astype(np.int64).astype("<u4").tobytes()})
    return out


def _check_batched(
    exe: Path,
    work: Path,
    plan: Plan,
    g,
    index: int,
    p: str,
    arena: bytearray,
    regions: dict[str, pl.Region],
    tensors: dict[str, np.ndarray],
) -> list[CheckResult]:
    """The movers of batched product ``g`` on the simulator's tensors: A tiler, B tiler and
    control records against :func:`expected_batched`, the C untiler against the output."""
    want = expected_batched(plan, g, index, tensors)
    a, b, _ = pl.stream_names(plan)
    path = work / f"{p}.arena"
    path.write_bytes(arena)
    out_dir = work / p
    out_dir.mkdir()
    rows = []
    for op, names in (("tile_a", a), ("tile_b", b), ("control", pl.rtp_names(plan))):
        err = _run(exe, op, p, path, out_dir)
        details = [err] if err else []
        if not err:
            details = [
                f"{name}: {d}"
                for name in names
                if (d := compare_bytes((out_dir / f"{name}.bin").read_bytes(), want[name]))
            ]
        rows.append(CheckResult(g.name, f"{PART}:{op}", True, not details, "; ".join(details)))
    for name in pl.c_names(plan, g):  # its kernel group's C streams
        (out_dir / f"{name}.bin").write_bytes(want[name])
    rows.append(_check_untile_c(exe, p, path, out_dir, g.name, arena, regions[g.outputs[0]]))
    return rows


def _check_sequencer(
    work: Path, plan: Plan, tensors: dict[str, np.ndarray], build: Path, hls_dir: Path
) -> CheckResult:
    """Run the kernel for one whole inference on x86, launch after launch of
    :func:`codesign.hls.pl.stages`, each Host partition run on the arena between two launches
    with onnxruntime, as the host program does (see the module docstring)."""
    part = f"{PART}:sequencer"
    a, b, c = pl.stream_names(plan)
    src = work / "seq_harness.cpp"
    rtp = pl.rtp_names(plan)
    src.write_bytes(
        pl.render("seq_harness.cpp.j2", a_streams=a, b_streams=b, c_streams=c, rtp_streams=rtp)
    )
    exe = work / "seq_harness"
    err = compile_cpp(src, exe, hls_dir)
    if err is not None:
        return CheckResult("(sequencer)", part, False, False, err)
    regions, size = pl.arena(plan)
    full = arena_bytes(build, plan, tensors)
    start = bytearray(size)  # the data files and the inputs only, as the host fills it
    keep = [regions[f.path] for f in pl.data_files(plan)]
    keep += [regions[t.name] for t in plan.inputs]
    for r in keep:
        start[r.offset : r.offset + r.nbytes] = full[r.offset : r.offset + r.nbytes]
    path = work / "sequencer.arena"
    path.write_bytes(start)
    record = 4 * (CONTROL_HEADER_WORDS + pl.epilogue_words(plan))
    want: dict[str, bytes] = {n: b"" for n in a + b + rtp}
    got: dict[str, bytes] = {n: b"" for n in a + b + rtp}
    details = []
    for stage in pl.stages(plan):
        if stage.segment < 0:
            layer = plan.layers[stage.layers[0]]
            try:
                path.write_bytes(run_host_partition(build, plan, layer, path.read_bytes()))
            except CodesignError as e:
                return CheckResult("(sequencer)", part, True, False, str(e))
            continue
        expected = _expected_streams(plan, stage.layers, tensors, full, hls_dir)
        out_dir = work / f"segment_{stage.segment}"
        out_dir.mkdir()
        for name in c:  # every kernel group's C streams, as the block sends them
            (out_dir / f"{name}.bin").write_bytes(expected.get(name, b""))
        err = _run(exe, path, out_dir, stage.segment)
        if err is not None:
            return CheckResult("(sequencer)", part, True, False, f"segment {stage.segment}: {err}")
        _append(got, {name: (out_dir / f"{name}.bin").read_bytes() for name in a + b + rtp})
        _append(want, {name: expected.get(name, b"") for name in a + b + rtp})
        # the host runs the graph for the iterations the launch sends records for
        sent = len((out_dir / f"{rtp[0]}.bin").read_bytes()) // record
        if sent != stage.iterations:
            details.append(
                f"segment {stage.segment}: {sent} control records per chain, the host program "
                f"runs the graph {stage.iterations} iterations"
            )
    done = path.read_bytes()
    for t in plan.tensors:
        r = regions[t.name]
        if d := compare_bytes(
            done[r.offset : r.offset + r.nbytes], bytes(full[r.offset : r.offset + r.nbytes])
        ):
            details.append(f"tensor {t.name}: {d}")
    for name in a + b + rtp:
        if d := compare_bytes(got[name], want[name]):
            details.append(f"stream {name}: {d}")
    return CheckResult("(sequencer)", part, True, not details, "; ".join(details[:4]))


def _expected_streams(
    plan: Plan,
    layers: tuple[int, ...],
    tensors: dict[str, np.ndarray],
    full: bytes | bytearray,
    hls_dir: Path,
) -> dict[str, bytes]:
    """What plan layers ``layers`` send on each A, B and control stream and read from each C
    stream, in layer order (``full``: the arena after the inference)."""
    from codesign.kinds.batched_matmul import BatchedMatMulLayer

    regions, _ = pl.arena(plan)
    want: dict[str, bytes] = {}

    def add(streams: dict[str, bytes]) -> None:
        _append(want, streams)

    on_block = aie_nonlinear.contexts(plan)
    consts = _ArenaData(plan, full)  # the parameters as the arena holds them
    for i in layers:
        g = plan.layers[i]
        if isinstance(g, BatchedMatMulLayer):
            add(expected_batched(plan, g, i, tensors))
        elif i in on_block and (hls_dir / f"{pl.ident(i, g.name)}.h").is_file():
            # a nonlinear layer on the AIE block: its rows, parameters, records and results
            params = [consts.data(plan.constants[n]) for n in on_block[i]["params"]]
            x, y = tensors[g.inputs[0]], tensors[g.outputs[0]]
            add(aie_nonlinear.expected_streams(plan, on_block[i], x, y, params))
        elif isinstance(g, GemmLayer):
            add(expected_a(plan, g, tensors[g.inputs[0]]))
            add(expected_b(plan, g, _dense_b(g, full, regions)))
            add(c_streams(plan, g, tensors[g.outputs[0]]))
            zp = int(np.asarray(tensors[g.inputs[1]]).reshape(-1)[0]) if len(g.inputs) > 1 else 0
            add(expected_control(plan, g, i, zp, full))
    return want


def _append(into: dict[str, bytes], streams: dict[str, bytes]) -> None:
    """Append each stream's bytes to ``into``'s (in stream order: layer after layer)."""
    for name, data in streams.items():
        into[name] = into.get(name, b"") + data


def run_host_partition(build: Path, plan: Plan, layer: Any, arena: bytes) -> bytes:
    """``arena`` after Host partition ``layer`` ran on it, as the build's host program runs it
    (host/host.cpp): its inputs read from their arena regions (plan dtype and shape), the
    partition's model from the build run by onnxruntime, its outputs stored at their regions.
    Raises BuildError when the model file is missing or onnxruntime fails."""
    from codesign.fileio import read_in
    from codesign.runtime.onnxhost import HostSession

    regions, _ = pl.arena(plan)
    model = read_in(build, layer.model.path, size=layer.model.shape[0])
    feeds = {}
    for name in layer.inputs:
        r = regions[name]
        raw = bytes(arena[r.offset : r.offset + r.nbytes])
        f = DataFile(path=name, dtype=r.dtype, shape=pl.shape_of(plan, name), sha256="")
        feeds[name] = decode(raw, f)
    values = HostSession(layer.name, model).run(feeds)
    out = bytearray(arena)
    for name in layer.outputs:
        r = regions[name]
        data = stored_bytes(np.asarray(values[name]), r.dtype)
        if len(data) != r.nbytes:
            raise BuildError(
                f"Host partition {layer.name!r}: output {name!r} has {len(data)} bytes, "
                f"its arena region {r.nbytes}"
            )
        out[r.offset : r.offset + r.nbytes] = data
    return bytes(out)


def _check_vector(
    exe: Path,
    work: Path,
    layer: Any,
    p: str,
    arena: bytearray,
    regions: dict[str, pl.Region],
) -> CheckResult:
    path = work / f"{p}.arena"
    before = bytearray(arena)
    for o in layer.outputs:  # the unit must write its outputs: start them as garbage
        r = regions[o]
        before[r.offset : r.offset + r.nbytes] = b"\xa5" * r.nbytes
    path.write_bytes(before)
    part = unit_part(layer)
    err = _run(exe, "vector", p, path)
    if err:
        return CheckResult(layer.name, part, True, False, err)
    after = path.read_bytes()
    details = []
    for o in layer.outputs:
        r = regions[o]
        d = compare_bytes(
            after[r.offset : r.offset + r.nbytes], bytes(arena[r.offset : r.offset + r.nbytes])
        )
        if d:
            details.append(f"{o}: {d}")
    return CheckResult(layer.name, part, True, not details, "; ".join(details))


def _check_gemm(
    exe: Path,
    work: Path,
    plan: Plan,
    g: GemmLayer,
    p: str,
    arena: bytearray,
    regions: dict[str, pl.Region],
    tensors: dict[str, np.ndarray],
) -> list[CheckResult]:
    rows = []
    path = work / f"{p}.arena"
    path.write_bytes(arena)
    out_dir = work / p
    out_dir.mkdir()

    def streams(op: str, want: dict[str, bytes]) -> CheckResult:
        err = _run(exe, op, p, path, out_dir)
        if err:
            return CheckResult(g.name, f"{PART}:{op}", True, False, err)
        details = [
            f"{name}: {d}"
            for name, data in want.items()
            if (d := compare_bytes((out_dir / f"{name}.bin").read_bytes(), data))
        ]
        return CheckResult(g.name, f"{PART}:{op}", True, not details, "; ".join(details))

    rows.append(streams("tile_a", expected_a(plan, g, tensors[g.inputs[0]])))
    packed = _dense_b(g, arena, regions)  # a compressed weight: expanded, as feed_b does
    packed_bytes = stored_bytes(packed, g.weight.dtype)
    rows.append(streams("feed_b", expected_b(plan, g, packed)))
    # the weight tiler: the row-major weight (the exact inverse of the packing) -> tempus.b/1
    s = g.schedule
    full = unpack_b(packed, s).transpose(1, 3, 4, 0, 2, 5).reshape(s.padded_K, s.padded_N)
    rowmajor = work / f"{p}.w"
    rowmajor.write_bytes(stored_bytes(np.ascontiguousarray(full[: s.K, : s.N]), g.weight.dtype))
    out = work / f"{p}.packed"
    err = _run(exe, "pack_b", p, rowmajor, out)
    rows.append(
        CheckResult(
            g.name,
            f"{PART}:pack_b",
            True,
            err is None and out.read_bytes() == packed_bytes,
            err or compare_bytes(out.read_bytes(), packed_bytes),
        )
    )
    # the C untiler: the simulator's output as chain tiles -> row-major, over a garbage region
    y = tensors[g.outputs[0]]
    for name, data in c_streams(plan, g, y).items():
        (out_dir / f"{name}.bin").write_bytes(data)
    rows.append(_check_untile_c(exe, p, path, out_dir, g.name, arena, regions[g.outputs[0]]))
    return rows


def _check_untile_c(
    exe: Path,
    p: str,
    path: Path,
    out_dir: Path,
    layer: str,
    arena: bytes | bytearray,
    yr: pl.Region,
) -> CheckResult:
    """Run layer ``p``'s C untiler on the C streams already in ``out_dir``, over an arena whose
    output region ``yr`` holds garbage, and compare that region with ``arena``'s."""
    garbage = bytearray(arena)
    garbage[yr.offset : yr.offset + yr.nbytes] = b"\xa5" * yr.nbytes
    path.write_bytes(garbage)
    err = _run(exe, "untile_c", p, path, out_dir)
    got = path.read_bytes()[yr.offset : yr.offset + yr.nbytes]
    want = bytes(arena[yr.offset : yr.offset + yr.nbytes])
    return CheckResult(
        layer,
        f"{PART}:untile_c",
        True,
        err is None and got == want,
        err or compare_bytes(got, want),
    )
