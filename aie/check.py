"""The AIE part of ``codesign check``: compile the build's AIE-ML kernels with g++ against the
x86 header set (``aie/include``), run every GEMM layer through a generated harness that follows
the graph (:mod:`codesign.aie.emit`; template ``harness.cc.j2``), and compare each layer's output
with the simulator bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np

from codesign.aie.emit import block_layers, graph_context, render
from codesign.codegen.check import CheckResult
from codesign.errors import BuildError
from codesign.ir.dtypes import ACC_TAG
from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import GemmLayer, Plan

#: g++ flags of the check: the issue's bar is "compiles without a warning"
CXXFLAGS = ("-std=c++20", "-Wall", "-Werror", "-O2")
PART = "aie"


def include_dir() -> Path:
    """The x86 AIE/ADF header set shipped with codesign."""
    return Path(str(resources.files("codesign.aie") / "include"))


def _gxx(args: list[str], cwd: Path) -> tuple[bool, str]:
    p = subprocess.run(
        ["g++", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )
    return p.returncode == 0, (p.stderr or p.stdout).strip()


def compile_kernels(aie_dir: Path, work: Path) -> tuple[list[Path], dict[str, str]]:
    """Compile every ``aie/kernels/*.cc`` of a build to an object in ``work`` (in parallel, one
    g++ per CPU); return the objects and the compiler's message of each file that failed
    (warnings are errors)."""
    kernels = aie_dir / "kernels"
    sources = sorted(kernels.glob("*.cc"))

    def one(src: Path) -> tuple[Path, bool, str]:
        obj = work / (src.stem + ".o")
        ok, msg = _gxx(
            [*CXXFLAGS, f"-I{include_dir()}", f"-I{kernels}", "-c", str(src), "-o", str(obj)], work
        )
        return obj, ok, msg

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        done = list(pool.map(one, sources))
    objects = [obj for obj, ok, _ in done if ok]
    failures = {src.name: msg for src, (_, ok, msg) in zip(sources, done, strict=True) if not ok}
    return objects, failures


def declared_ports(ctx: dict) -> dict[str, int]:
    """The declared size (bytes) of each kind of core buffer port (``a``, ``b``, ``c``,
    ``carry_in``, ``carry_out``) in the graph's ``adf::dimensions`` (``ctx``: a
    :func:`codesign.aie.emit.graph_context`); 0 for a kind the graph has not. Every core's port
    of one kind has the same size (BuildError otherwise: the harness models one)."""
    sizes: dict[str, set[int]] = {}
    for d in ctx["dims"]:
        sizes.setdefault(d["role"], set()).add(d["size"])
    ports = {}
    for role in ("a", "b", "c", "carry_in", "carry_out"):
        got = sizes.get(role, {0})
        if len(got) != 1:
            raise BuildError(f"graph: the cores' {role} ports differ in size ({sorted(got)})")
        ports[role] = got.pop()
    return ports


def pl_transfers(plan: Plan) -> dict[int, tuple[int, int, int]]:
    """Bytes the PL movers of each block layer (by plan layer index) send per A and B tile and
    read per C buffer: their beat counts (:mod:`codesign.hls.pl`, the batched kind's and
    :mod:`codesign.hls.aie_nonlinear`'s contexts) times the beat. The harnesses move exactly
    these through the buffer ports, so a mover that sends other than a whole port fails."""
    from codesign.hls import aie_nonlinear, pl
    from codesign.kinds.batched_matmul import pl_context

    beat = pl.beat_bits(plan) // 8
    out = {}
    for i, g in block_layers(plan):
        ctx = pl.gemm_context(plan, i, g) if isinstance(g, GemmLayer) else pl_context(plan, i, g)
        out[i] = (ctx["a_beats"] * beat, ctx["b_beats"] * beat, ctx["c_beats"] * beat)
    for i, nl in aie_nonlinear.contexts(plan).items():
        ctx = aie_nonlinear.step_context(plan, nl)
        out[i] = (ctx["a_beats"] * beat, ctx["b_beats"] * beat, ctx["c_beats"] * beat)
    return out


def harness_source(plan: Plan) -> bytes:
    """The x86 harness of the plan's graph (see ``templates/harness.cc.j2``)."""
    ctx = graph_context(plan)
    layers = [layer for _, layer in block_layers(plan)]
    ctx["ports"] = declared_ports(ctx)
    ctx["xfer"] = pl_transfers(plan)
    ctx["groups_index"] = {g["tag"]: i for i, g in enumerate(ctx["groups"])}
    ctx["tiles"] = {i: (g.schedule.m_tiles, g.schedule.n_tiles) for i, g in enumerate(layers)}
    ctx["csize"] = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "bfloat16": 2}
    ctx["csize"]["float"] = 4
    return render("harness.cc.j2", **ctx)


def graph_probe_source(plan: Plan) -> bytes:
    """The program that builds the generated graph.h with the x86 ADF model and prints it."""
    return render("graph_probe.cc.j2", **graph_context(plan))


def graph_differences(log: str, plan: Plan) -> list[str]:
    """Compare what the compiled graph.h created and connected (the probe's output) with the
    structure the harness follows (:func:`codesign.aie.emit.graph_context`); return the
    differences (empty when they agree)."""
    ctx = graph_context(plan)
    fns: dict[str, str] = {}
    kernels: list[str] = []
    buffers: list[tuple[int, int, int]] = []
    plios: dict[str, tuple[str, int, float]] = {}
    edges: set[tuple[str, str, str]] = set()
    params: set[str] = set()
    dims: dict[str, int] = {}
    access: dict[str, tuple[str, str, str, str]] = {}
    for line in log.splitlines():
        f = line.split()
        if f[0] == "fn":
            fns[f[2]] = f[1]
        elif f[0] == "kernel":
            kernels.append(f[2])
        elif f[0] == "buffer":
            buffers.append((int(f[2]), int(f[3]), int(f[4])))
        elif f[0] == "plio":
            plios[f[2]] = (f[1], int(f[3]), float(f[4]))
        elif f[0] in ("connect", "cascade"):
            edges.add((f[0], f[1], f[2]))
        elif f[0] == "parameter":
            params.add(f[1])
        elif f[0] == "dimensions":
            dims[f[1]] = int(f[2])
        elif f[0] == "access":
            access[f[2]] = (f[1], f[3], f[4], f[5])
    names = {f"kernel{i}": k["var"] for i, k in enumerate(ctx["cores"])}
    names |= {f"buffer{i}": b["var"] for i, b in enumerate(ctx["buffers"])}
    names |= {f"plio:{p['name']}": p["var"] for p in ctx["plios"]}

    def named(end: str) -> str:
        node, port = end.split(".", 1)
        return f"{names.get(node, node)}.{port}"

    diffs = []
    got_fns = [fns.get(a, f"unknown function at {a}") for a in kernels]
    want_fns = [k["fn"] for k in ctx["cores"]]
    if got_fns != want_fns:
        diffs.append(f"kernels {got_fns} != {want_fns}")
    want_plios = {
        p["name"]: (
            p["kind"][:-3] if p["kind"] == "output" else "in",
            p["bits"],
            ctx["plio_mhz"],
        )
        for p in ctx["plios"]
    }
    if plios != want_plios:
        diffs.append(f"PLIOs {sorted(plios)} != {sorted(want_plios)}")
    want_buffers = [(b["bytes"], b["inputs"], b["outputs"]) for b in ctx["buffers"]]
    if buffers != want_buffers:
        diffs.append(f"buffers {buffers} != {want_buffers}")
    got_edges = {(k, named(a), named(b)) for k, a, b in edges}
    want_edges = {
        ("cascade" if c["kind"] == "cascade" else "connect", c["src"], c["dst"])
        for c in ctx["connections"]
        if c["kind"] != "parameter"
    }
    if got_edges != want_edges:
        diffs.append(f"connections differ: {sorted(got_edges ^ want_edges)[:4]}")
    # the buffer ports' declared sizes: what the harness's buffer model holds every transfer to
    got_dims = {named(p): n for p, n in dims.items()}
    want_dims = {d["port"]: d["size"] for d in ctx["dims"]}
    if got_dims != want_dims:
        diff = sorted(set(got_dims.items()) ^ set(want_dims.items()))[:4]
        diffs.append(f"buffer port dimensions differ: {diff}")
    # every memory-tile buffer port is declared with a whole-buffer access pattern
    got_access = {named(p): a for p, a in access.items()}
    want_access = {
        f"{b['var']}.{side}[{i}]": (kind, str(b["bytes"]), str(b["bytes"]), "0")
        for b in ctx["buffers"]
        for side, kind, count in (("in", "write", b["inputs"]), ("out", "read", b["outputs"]))
        for i in range(count)
    }
    if got_access != want_access:
        diff = sorted(set(got_access.items()) ^ set(want_access.items()))[:4]
        diffs.append(f"memory-tile access patterns differ: {diff}")
    want_params = {c["dst"] for c in ctx["connections"] if c["kind"] == "parameter"}
    if {named(p) for p in params} != want_params:
        diffs.append("run-time parameter connections differ")
    return diffs


def _stored(arr: np.ndarray, dtype: str) -> bytes:
    """Raw little-endian bytes of a decoded data file (bf16: its upper 16 bits)."""
    if dtype == "bf16":
        return (np.asarray(arr, dtype=np.float32).view("<u4") >> 16).astype("<u2").tobytes()
    return np.ascontiguousarray(arr, dtype=numpy_dtype(dtype).newbyteorder("<")).tobytes()


def _epilogue_words(sim, g: GemmLayer) -> bytes:
    """The whole layer's epilogue table (harness input): bias, colsum over padded N; multiplier
    and shift over padded N when per-channel, else one word each."""
    s = g.schedule
    pn = s.padded_N
    words: list[np.ndarray] = []

    def col(v: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros(pn, dtype=dtype)
        out[: v.size] = v.reshape(-1)
        return out

    if g.bias is not None:
        b = sim.data(g.bias)
        if g.dtype == "bf16":
            words.append(col(np.asarray(b, dtype=np.float32), np.float32).view(np.int32))
        elif ACC_TAG[g.dtype] == "acc64":  # lo in [0, 2**31), then hi = bias >> 31
            b64 = col(np.asarray(b, dtype=np.int64), np.int64)
            words.append((b64 & (2**31 - 1)).astype(np.int32))
            words.append((b64 >> 31).astype(np.int32))
        else:
            words.append(col(np.asarray(b, dtype=np.int64), np.int64).astype(np.int32))
    if g.colsum is not None and len(g.inputs) > 1:
        words.append(col(np.asarray(sim.data(g.colsum), dtype=np.int64), np.int64).astype(np.int32))
    r = g.requant
    if r is not None:
        mult = np.asarray(sim.data(r.multiplier), dtype=np.int64).reshape(-1)
        shift = np.asarray(sim.data(r.shift), dtype=np.int64).reshape(-1)
        if mult.size > 1 or shift.size > 1:
            full = np.broadcast_to
            words.append(col(full(mult, (s.N,)), np.int64).astype(np.int32))
            words.append(col(full(shift, (s.N,)), np.int64).astype(np.int32))
        else:
            words += [mult.astype(np.int32), shift.astype(np.int32)]
    if not words:
        return np.zeros(1, dtype="<i4").tobytes()
    return np.concatenate(words).astype("<i4").tobytes()


def _compare(got: np.ndarray, want: np.ndarray) -> tuple[bool, float]:
    """Bit-for-bit equality (a NaN matches a NaN of any payload) and the largest |difference|."""
    if np.issubdtype(want.dtype, np.floating):
        g32, w32 = got.astype(np.float32), want.astype(np.float32)
        both_nan = np.isnan(g32) & np.isnan(w32)
        same = (g32.view(np.uint32) == w32.view(np.uint32)) | both_nan
        with np.errstate(all="ignore"):
            diff = np.where(both_nan, 0.0, np.abs(g32.astype(np.float64) - w32.astype(np.float64)))
        return bool(same.all()), float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    return bool((diff == 0).all()), float(diff.max(initial=0))


def check_aie(root: Path, plan: Plan, env: dict[str, np.ndarray]) -> list[CheckResult]:
    """Compile the build's AIE kernels, graph and harness; check the graph's structure (a row
    named ``graph``), then run and compare every GEMM layer."""
    from codesign.sim.functional import Simulator

    layers = [layer for _, layer in block_layers(plan)]
    if not layers:
        return []
    aie_dir = Path(root) / "aie"
    if not (aie_dir / "kernels").is_dir():
        raise BuildError(
            f"{aie_dir / 'kernels'}: missing; the build must hold the AIE code codesign compile "
            "writes (recompile it)"
        )
    sim = Simulator(plan, Path(root))
    with tempfile.TemporaryDirectory(prefix="codesign-aie-") as tmp:
        work = Path(tmp)
        objects, failures = compile_kernels(aie_dir, work)
        if failures:
            first = next(iter(failures.items()))
            detail = f"{first[0]}: {first[1].splitlines()[0] if first[1] else 'failed'}"
            return [CheckResult(g.name, PART, False, False, detail) for g in layers]
        exe = work / "harness"
        ok, msg = _link_harness(work, aie_dir, objects, "harness", harness_source(plan))
        if not ok:
            line = msg.splitlines()[0] if msg else "failed"
            return [CheckResult(g.name, PART, False, False, f"harness: {line}") for g in layers]
        results = [_check_graph(plan, aie_dir, work, objects)]
        for i, g in enumerate(layers):
            run = _run_layer if isinstance(g, GemmLayer) else _run_batched
            results.append(run(sim, exe, work / f"l{i}", i, g, env))
        results += _check_nonlinear(sim, plan, aie_dir, work, objects, env)
    return results


def _link_harness(
    work: Path, aie_dir: Path, objects: list[Path], name: str, source: bytes
) -> tuple[bool, str]:
    """Write ``source`` as ``work/<name>.cc`` and build ``work/<name>`` from it and the compiled
    kernel ``objects`` with the kernels' flags; (ok, g++'s message)."""
    (work / f"{name}.cc").write_bytes(source)
    args = [*CXXFLAGS, f"-I{include_dir()}", f"-I{aie_dir / 'kernels'}", f"{name}.cc"]
    return _gxx([*args, *[str(o) for o in objects], "-o", str(work / name)], work)


def nonlinear_harness_source(plan: Plan) -> bytes:
    """The x86 harness of the plan's AIE-placed nonlinear layers (``nonlinear_harness.cc.j2``)."""
    ctx = graph_context(plan)
    ctx["ports"] = declared_ports(ctx)
    ctx["xfer"] = pl_transfers(plan)
    return render("nonlinear_harness.cc.j2", **{**ctx, **ctx["groups"][0]})


def _check_nonlinear(
    sim, plan: Plan, aie_dir: Path, work: Path, objects: list[Path], env
) -> list[CheckResult]:
    """Run every AIE-placed nonlinear layer through the nonlinear harness and compare its output
    with the simulator's bit for bit (one row per layer, part ``aie``)."""
    contexts = graph_context(plan)["nl_layers"]
    if not contexts:
        return []
    exe = work / "nl_harness"
    ok, msg = _link_harness(work, aie_dir, objects, "nl_harness", nonlinear_harness_source(plan))
    if not ok:
        line = msg.splitlines()[0] if msg else "failed"
        return [CheckResult(c["name"], PART, False, False, f"nl_harness: {line}") for c in contexts]
    rows = []
    for ctx in contexts:
        layer = plan.layers[ctx["index"]]
        d = work / f"nl{ctx['index']}"
        d.mkdir()
        x = np.asarray(env[layer.inputs[0]], dtype="<f4")
        (d / "x.bin").write_bytes(x.tobytes())
        params = [np.asarray(sim.data(plan.constants[n]), dtype="<f4") for n in ctx["params"]]
        (d / "params.bin").write_bytes(b"".join(p.tobytes() for p in params))
        p = subprocess.run(
            [str(exe), str(ctx["index"]), str(d)],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if p.returncode != 0:
            rows.append(
                CheckResult(
                    layer.name,
                    PART,
                    True,
                    False,
                    f"nl_harness exit {p.returncode}: {p.stderr[:200]}",
                )
            )
            continue
        want = np.asarray(env[layer.outputs[0]], dtype=np.float32).reshape(-1)
        got = np.frombuffer((d / "y.bin").read_bytes(), dtype="<f4")
        if got.size != want.size:
            rows.append(
                CheckResult(layer.name, PART, True, False, f"{got.size} values, not {want.size}")
            )
            continue
        same, diff = _compare(got, want)
        detail = (
            "" if same else f"{int(np.sum(got.view('<u4') != want.view('<u4')))} value(s) differ"
        )
        rows.append(CheckResult(layer.name, PART, True, same, detail, diff))
    return rows


def _check_graph(plan: Plan, aie_dir: Path, work: Path, objects: list[Path]) -> CheckResult:
    """Compile graph.h (and graph.cpp) with the x86 ADF model, link it with the kernels, and
    compare what it builds with the structure the harness follows."""
    ok, msg = _gxx(
        [
            *CXXFLAGS,
            "-D__X86SIM__",
            f"-I{include_dir()}",
            f"-I{aie_dir}",
            f"-I{aie_dir / 'kernels'}",
            "-c",
            str(aie_dir / "graph.cpp"),
            "-o",
            str(work / "graph_cpp.o"),
        ],
        work,
    )
    if ok:
        (work / "graph_probe.cc").write_bytes(graph_probe_source(plan))
        ok, msg = _gxx(
            [
                *CXXFLAGS,
                f"-I{include_dir()}",
                f"-I{aie_dir}",
                f"-I{aie_dir / 'kernels'}",
                "graph_probe.cc",
                *[str(o) for o in objects],
                "-o",
                str(work / "graph_probe"),
            ],
            work,
        )
    if not ok:
        return CheckResult(
            "graph", PART, False, False, f"graph.h: {msg.splitlines()[0] if msg else 'failed'}"
        )
    p = subprocess.run(
        [str(work / "graph_probe")], capture_output=True, text=True, check=False, timeout=60
    )
    if p.returncode != 0:
        return CheckResult("graph", PART, True, False, f"graph probe exit {p.returncode}")
    diffs = graph_differences(p.stdout, plan)
    return CheckResult("graph", PART, True, not diffs, "; ".join(diffs)[:300])


def _write_streams(d: Path, streams: dict[str, bytes]) -> None:
    """One ``<stream>.bin`` file in ``d`` per stream (the harness's A inputs)."""
    for name, data in streams.items():
        (d / f"{name}.bin").write_bytes(data)


def _output(plan: Plan, s, d: Path, dtype: np.dtype) -> np.ndarray:
    """The M x N output that the C streams the harness wrote (``d/c_<c>.bin``) carry, read
    as the PL C untiler reads them (``tempus.c/1`` tiles: :func:`codesign.hls.check.
    output_of_c_streams`)."""
    from codesign.hls import pl
    from codesign.hls.check import output_of_c_streams

    streams = {
        pl.c_name(c): (d / f"{pl.c_name(c)}.bin").read_bytes() for c in range(s.block.chains)
    }
    raw = output_of_c_streams(plan, s, streams, dtype.itemsize)
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(s.M, s.N)


def _run_layer(
    sim, exe: Path, d: Path, index: int, g: GemmLayer, env, a_streams: dict | None = None
) -> CheckResult:
    """One GEMM layer through the harness: its A streams are exactly the ones the PL A tiler
    must send (:func:`codesign.hls.check.expected_a`, ``tempus.a/1`` tiles; ``a_streams``: other
    A streams, e.g. what the PL tiler sent), and its output is read from the C streams
    (``d/c_<chain>.bin``, left there) as the PL C untiler reads them."""
    from codesign.hls.check import expected_a

    d.mkdir()
    s = g.schedule
    if a_streams is None:
        a_streams = expected_a(sim.plan, g, np.asarray(env[g.inputs[0]]))
    _write_streams(d, a_streams)
    from codesign.kinds.gemm import dense_b  # the cores see dense B (expanded in the PL)

    nm_index = sim.data(g.sparse.index) if g.sparse is not None else None
    (d / "b.bin").write_bytes(_stored(dense_b(sim.data(g.weight), nm_index, g), g.weight.dtype))
    (d / "epi.bin").write_bytes(_epilogue_words(sim, g))
    za = 0
    if len(g.inputs) > 1 and g.inputs[1]:
        za = int(np.asarray(env[g.inputs[1]]).reshape(-1)[0])
    p = subprocess.run(
        [str(exe), str(index), str(d), str(za)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env={**os.environ},
    )
    if p.returncode != 0:
        return CheckResult(
            g.name, PART, True, False, f"harness exit {p.returncode}: {p.stderr[:200]}"
        )
    want = np.asarray(env[g.outputs[0]]).reshape(s.M, s.N)
    try:
        got = _output(sim.plan, s, d, want.dtype)
    except ValueError as e:
        return CheckResult(g.name, PART, True, False, str(e))
    same, diff = _compare(got, want)
    detail = "" if same else f"{int(np.sum(got.reshape(-1) != want.reshape(-1)))} value(s) differ"
    return CheckResult(g.name, PART, True, same, detail, diff)


def _run_batched(
    sim, exe: Path, d: Path, index: int, g, env, streams: list[dict[str, bytes]] | None = None
) -> CheckResult:
    """A batched product (:mod:`codesign.kinds.batched_matmul`) head by head through the same
    harness: per head the A streams of the cores' A (re-centred or rounded to bf16, in
    ``tempus.a/1`` tiles: what the PL A tiler streams), the head's B in ``tempus.b/1`` order
    (what the PL B tiler streams) and its epilogue table; the heads' outputs, read from the C
    streams as the PL untiler reads them and written back in the layer's write order, must
    equal the simulator's. ``streams``: per head other A and B streams (``a_<l>``,
    ``b_<c>_<l>``: e.g. the head's part of what the PL tilers sent), fed to the harness as they
    are. Head h's C streams are left in ``d/h<h>/c_<chain>.bin``."""
    from codesign.hls.check import _a_streams
    from codesign.ir.layouts import pack_b
    from codesign.kinds.batched_matmul import (
        CORE_DTYPE,
        core_operands,
        epilogue_table,
        perm_or_identity,
    )

    d.mkdir()
    s = g.schedule
    A, B, za, zb = core_operands(sim.plan, g, env[g.inputs[0]], env[g.inputs[1]])
    want = np.asarray(env[g.outputs[0]])
    heads = []
    for h in range(g.batch):
        hd = d / f"h{h}"
        hd.mkdir()
        if streams is None:
            _write_streams(hd, _a_streams(sim.plan, s, A[h], CORE_DTYPE[g.dtype]))
            (hd / "b.bin").write_bytes(_stored(pack_b(B[h], s), CORE_DTYPE[g.dtype]))
        else:  # no b.bin: the harness reads the B streams
            _write_streams(hd, streams[h])
        (hd / "epi.bin").write_bytes(epilogue_table(g, A[h], B[h], za, zb).astype("<i4").tobytes())
        p = subprocess.run(
            [str(exe), str(index), str(hd), str(za)],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if p.returncode != 0:
            return CheckResult(
                g.name,
                PART,
                True,
                False,
                f"head {h}: harness exit {p.returncode}: {p.stderr[:200]}",
            )
        try:
            heads.append(_output(sim.plan, s, hd, want.dtype))
        except ValueError as e:
            return CheckResult(g.name, PART, True, False, f"head {h}: {e}")
    y = np.stack(heads).reshape(*g.batch_shape, s.M, s.N)
    y = np.transpose(y, perm_or_identity(g.out_perm, y.ndim))
    same, diff = _compare(y, want)
    detail = "" if same else f"{int(np.sum(y.reshape(-1) != want.reshape(-1)))} value(s) differ"
    return CheckResult(g.name, PART, True, same, detail, diff)
