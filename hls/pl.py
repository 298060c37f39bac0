"""The PL side of a build, as data: stream names, the DDR arena, and the text of the HLS files.

Everything here is a pure function of the Plan (and the board's PLIO width), so the files are
byte-deterministic. The contracts (documented in docs/pl_streams.md):

- **Stream names.** Cascade position ``l`` of the block reads its A tiles from PLIO ``a_{l}``;
  core (chain ``c``, position ``l``) reads its B tiles from ``b_{c}_{l}``; the end of chain ``c``
  writes its C tiles to ``c_{c}``. :func:`a_name`, :func:`b_name`, :func:`c_name` are the one
  definition; the AIE graph and system.cfg use the same names.
- **Beats.** Every PL<->AIE stream carries ``beat_bits``-bit beats (the board's widest PLIO);
  elements are packed little-endian from bit 0; each tile starts on a fresh beat and its last
  beat is zero-padded.
- **Stream order.** For a GEMM, graph iterations walk (M tile i, N tile j), N fastest; each
  iteration runs the K passes p. ``a_{l}`` carries, per (i, j, p), the m x k tile of A at rows
  i*m.., columns (p*L + l)*k.. (``tempus.a/1`` order: codesign.ir.layouts, zero outside A): the
  simulator's A tile of core l, replayed for every N tile (the replication Tempus does on the
  host). ``b_{c}_{l}`` carries, per
  (i, j, p), the k x n tile (n_tile j, pass p, chain c, core l) of the ``tempus.b/1`` stream
  (native blocks), replayed for every M tile. ``c_{c}`` carries per (i, j) the m x n output tile of
  chain c (``tempus.c/1`` order, padding included).
- **Arena.** The PL kernels address one DDR buffer: every plan data file, then every activation
  tensor, each at a 64-byte-aligned offset in plan order (a view shares its input's bytes: a
  reshape's output all of them, a contiguous slice's its run of them). Data files hold their stored bytes (:func:`codesign.ir.data.stored_bytes`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache

import jinja2

from codesign.aie.emit import (
    CONTROL_HEADER_WORDS,
    block_layers,
    c_plio_name,
    epilogue_layout,
    group_of,
    group_tags,
    port_bytes,
    rtp_name,
)
from codesign.boards import load as load_board
from codesign.errors import CodesignError
from codesign.hls.nl_math import float_literal  # noqa: F401 - the kinds' fp32 constants
from codesign.ir.data import itemsize
from codesign.ir.plan import (
    DataFile,
    GemmLayer,
    Layer,
    Plan,
    ReshapeLayer,
    TemporalSchedule,
    VectorLayer,
    inference_steps,
)
from codesign.kinds.registry import Emitted
from codesign.sim.numerics import nm_index_bits

#: alignment of every arena region (bytes): one 512-bit AXI beat
ARENA_ALIGN = 64

#: C++ storage type of each dtype in the arena and in the vector units (bf16 is stored as its
#: upper 16 bits and computed as float, as codesign.sim.numerics.to_bf16 does)
_CTYPES = {
    "int4": "ap_int<8>",
    "uint4": "ap_uint<8>",
    "int8": "ap_int<8>",
    "uint8": "ap_uint<8>",
    "int16": "ap_int<16>",
    "uint16": "ap_uint<16>",
    "int32": "ap_int<32>",
    "int64": "ap_int<64>",
    "float32": "float",
    "bf16": "float",
}
_FLOATS = ("float32", "bf16")


class PLCodegenError(CodesignError):
    """A plan layer the PL code generator cannot express (names the layer, says what it needs)."""


def a_name(l: int) -> str:  # noqa: E741 - l is the cascade position, as in the docs
    """PLIO name of the A stream of cascade position ``l``."""
    return f"a_{l}"


def b_name(c: int, l: int) -> str:  # noqa: E741
    """PLIO name of the B stream of core (chain ``c``, cascade position ``l``)."""
    return f"b_{c}_{l}"


def c_name(c: int) -> str:
    """PLIO name of the C stream leaving chain ``c`` (a plan with one kernel group)."""
    return c_plio_name(c, 0, 1)


def c_names(plan: Plan, layer: Layer) -> list[str]:
    """The C PLIO names, chain by chain, of the kernel group that runs block layer ``layer``
    (:func:`codesign.aie.emit.group_of`: each group's last cores have C PLIOs of their own)."""
    groups = max(1, len(group_tags(plan)))
    g = group_of(plan, layer)
    return [c_plio_name(c, g, groups) for c in range(plan.block.chains)]


def rtp_names(plan: Plan) -> list[str]:
    """The control PLIO names of the plan's block (one 32-bit stream per chain): the AIE graph's
    ``rtp_<chain>`` inputs (:func:`codesign.aie.emit.rtp_name`, the one definition)."""
    return [rtp_name(c) for c in range(plan.block.chains)]


def epilogue_words(plan: Plan) -> int:
    """Epilogue words of every control record: the largest block layer's (GEMM or batched
    product; the AIE kernels read a fixed-length record)."""
    return max((epilogue_layout(g).words for _, g in block_layers(plan)), default=1)


def _epilogue_sections(plan: Plan, g: GemmLayer) -> list[dict]:
    """How the sequencer forms the tile's epilogue words of layer ``g`` from the arena, in the
    order of :func:`codesign.aie.emit.epilogue_layout`: per section the data file's region, its
    dtype, how a word is formed (``f32`` bits, ``lo``/``hi`` of an acc64 bias, ``int``), whether
    it is per column (else one word, element 0) and its element count."""
    regions, _ = arena(plan)
    ep = epilogue_layout(g)
    out = []

    def add(f: DataFile, word: str, per_column: bool) -> None:
        r = regions[f.path]
        out.append(
            {
                "offset": r.offset,
                "dtype": f.dtype,
                "word": word,
                "per_column": per_column,
                "count": math.prod(f.shape),
                "size": itemsize(f.dtype),
            }
        )

    if ep.bias is not None:
        if g.dtype == "bf16":
            add(g.bias, "f32", True)
        elif ep.bias_hi is not None:
            add(g.bias, "lo", True)
            add(g.bias, "hi", True)
        else:
            add(g.bias, "int", True)
    if ep.colsum is not None:
        add(g.colsum, "int", True)
    if ep.mult is not None:
        add(g.requant.multiplier, "int", ep.per_channel)
        add(g.requant.shift, "int", ep.per_channel)
    return out


def stream_names(plan: Plan) -> tuple[list[str], list[str], list[str]]:
    """The (A, B, C) PLIO names of the plan's block, in port order."""
    L, C = plan.block.cascade, plan.block.chains
    return (
        [a_name(pos) for pos in range(L)],
        [b_name(c, pos) for c in range(C) for pos in range(L)],
        [
            c_plio_name(c, g, G)
            for G in [max(1, len(group_tags(plan)))]
            for g in range(G)
            for c in range(C)
        ],
    )


def beat_bits(plan: Plan) -> int:
    """Width of a PL<->AIE stream beat: the board's widest PLIO (as the RTL blocks use)."""
    return max(load_board(plan.board).plio.widths_bits)


def port_beats(plan: Plan) -> tuple[int, int, int]:
    """Beats of one (A, B, C) transfer of every block layer: the graph's buffer ports, which
    serve every layer and are sized for the largest layer's tile in whole beats
    (:func:`codesign.aie.emit.port_bytes`). A layer with a smaller tile pads each A and B tile
    it sends with zeros after the tile and drops what follows its tile in each C buffer it reads:
    on hardware a buffer port fires only on a whole buffer and an output buffer leaves whole."""
    ports = port_bytes(plan)
    return ports.a // ports.beat, ports.b // ports.beat, ports.c // ports.beat


def ident(index: int, name: str) -> str:
    """A C++ identifier for layer ``index`` called ``name`` (unique by the index)."""
    return f"l{index}_" + re.sub(r"[^A-Za-z0-9_]", "_", name)[:40]


def ctype(dtype: str, where: str) -> str:
    try:
        return _CTYPES[dtype]
    except KeyError:
        raise PLCodegenError(
            f"{where}: dtype must be one of {', '.join(_CTYPES)} for the PL, not {dtype!r}"
        ) from None


@dataclass(frozen=True)
class Region:
    """One tensor or data file in the arena: byte offset, bytes, dtype and element count."""

    offset: int
    nbytes: int
    dtype: str
    count: int


def _align(x: int) -> int:
    return -(-x // ARENA_ALIGN) * ARENA_ALIGN


def data_files(plan: Plan) -> list[DataFile]:
    """Every data file the plan refers to, each once, in plan order."""
    seen: dict[str, DataFile] = {}
    for f in plan.constants.values():
        seen.setdefault(f.path, f)
    for g in plan.layers:
        if isinstance(g, GemmLayer):
            fs = [g.weight, g.bias, g.colsum]
            if g.sparse is not None:
                fs.append(g.sparse.index)
            if g.requant is not None:
                fs += [g.requant.multiplier, g.requant.shift]
            for f in fs:
                if f is not None:
                    seen.setdefault(f.path, f)
    return list(seen.values())


def arena(plan: Plan) -> tuple[dict[str, Region], int]:
    """The arena layout: regions by data-file path and by tensor name, and the total bytes.

    Linear in the plan's size; the last plan's layout is kept (by identity), since every
    layer's file asks for it."""
    view = _view(plan)
    return view[0], view[1]


_LAST: list = []


def _view(plan: Plan) -> tuple[dict[str, Region], int, dict[str, tuple[int, ...]]]:
    """(regions, arena bytes, shape of every tensor and constant by name) of ``plan``."""
    if _LAST and _LAST[0] is plan:
        return _LAST[1]
    weights = {
        g.weight.path: g.schedule.padded_K * g.schedule.padded_N
        for g in plan.gemms()
        if g.weight is not None
    }
    for g in plan.gemms():
        if g.sparse is not None:  # tempus.b-nm/1 values and their packed positions (bytes)
            slots = weights[g.weight.path] // g.sparse.m * g.sparse.n
            weights[g.weight.path] = slots
            weights[g.sparse.index.path] = -(-slots * nm_index_bits(g.sparse.m) // 8)
    regions: dict[str, Region] = {}
    at = 0
    for f in data_files(plan):
        if f.layout == "row-major":
            count = math.prod(f.shape)
        elif f.path in weights:
            count = weights[f.path]
        else:
            raise PLCodegenError(f"{f.path}: layout {f.layout} belongs to no GEMM of the plan")
        n = count * itemsize(f.dtype)
        regions[f.path] = Region(at, n, f.dtype, count)
        at = _align(at + n)
    for name, f in plan.constants.items():
        regions[name] = regions[f.path]
    alias = _views(plan)
    for t in plan.tensors:
        if t.name in regions:
            continue
        if t.name in alias and alias[t.name][0] in regions:
            src, start = alias[t.name]
            count = math.prod(t.shape)
            base = regions[src]
            regions[t.name] = Region(
                base.offset + start * itemsize(t.dtype), count * itemsize(t.dtype), t.dtype, count
            )
            continue
        count = math.prod(t.shape)
        n = count * itemsize(t.dtype)
        regions[t.name] = Region(at, n, t.dtype, count)
        at = _align(at + n)
    shapes = {name: tuple(f.shape) for name, f in plan.constants.items()}
    shapes.update({t.name: tuple(t.shape) for t in plan.tensors})
    result = (regions, max(at, ARENA_ALIGN), shapes)
    _LAST[:] = [plan, result]
    return result


def _views(plan: Plan) -> dict[str, tuple[str, int]]:
    """The outputs that share their input's bytes: (input, first element) of every reshape
    (all of it) and every view slice (:func:`codesign.kinds.movement.view_offset`)."""
    from codesign.kinds.movement import view_offset

    out = {}
    for layer in plan.layers:
        if isinstance(layer, ReshapeLayer):
            out[layer.outputs[0]] = (layer.inputs[0], 0)
        elif (start := view_offset(plan, layer)) is not None:
            out[layer.outputs[0]] = (layer.inputs[0], start)
    return out


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("codesign.hls", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # C++ text: identifiers made by ident(), literals made by the callers
        finalize=_one_line,
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPLICE = re.compile(r"\\\s*$")


def _one_line(value: object) -> object:
    """Every string a template writes stays on its line: a model's layer names land in C++
    comments, where a newline would start code and a trailing backslash would splice the next
    line into the comment. Control characters and a trailing backslash become ``_``."""
    if isinstance(value, str):
        return _SPLICE.sub("_", _CONTROL.sub("_", value))
    return value


def render(template: str, **ctx: object) -> bytes:
    return _env().get_template(template).render(**ctx).encode()


# --- GEMM layers --------------------------------------------------------------------------------


def gemm_context(plan: Plan, index: int, g: GemmLayer) -> dict:
    """What the GEMM template needs for layer ``g`` (plan layer number ``index``)."""
    regions, _ = arena(plan)
    s = g.schedule
    a = regions[g.inputs[0]]
    y = regions[g.outputs[0]]
    w = regions[g.weight.path]
    bits = beat_bits(plan)
    a_bytes = 2 if g.dtype == "bf16" else itemsize(a.dtype)
    w_bytes = itemsize(g.weight.dtype)
    y_bytes = itemsize(y.dtype)
    for nbytes, what in ((a_bytes, "A"), (w_bytes, "B"), (y_bytes, "C")):
        if (bits // 8) % nbytes:
            raise PLCodegenError(f"layer {g.name!r}: {what} elements do not divide a stream beat")
    _, streams_b, streams_c = stream_names(plan)
    return {
        "p": ident(index, g.name),
        "name": g.name,
        "s": s,
        "L": s.block.cascade,
        "C": s.block.chains,
        "bits": bits,
        "a": a,
        "a_bytes": a_bytes,
        "a_bf16": g.dtype == "bf16" and a.dtype != "bf16",
        "a_src_bytes": itemsize(a.dtype),
        "w": w,
        "w_bytes": w_bytes,
        "y": y,
        "y_bytes": y_bytes,
        "rtp_streams": rtp_names(plan),
        "epi_sections": _epilogue_sections(plan, g),
        "epi_words": epilogue_words(plan),
        "ctl_header": CONTROL_HEADER_WORDS,
        "index": index,
        "a_streams": [a_name(pos) for pos in range(s.block.cascade)],
        "b_streams": streams_b,
        "c_streams": c_names(plan, g),  # its kernel group's
        "c_all": streams_c,
        # whole buffer ports (port_beats): the tile, then zeros; C: the tile, then dropped bytes
        **dict(zip(("a_beats", "b_beats", "c_beats"), port_beats(plan), strict=True)),
        "nm": None
        if g.sparse is None
        else {
            "n": g.sparse.n,
            "m": g.sparse.m,
            "bits": nm_index_bits(g.sparse.m),
            "ix": regions[g.sparse.index.path],
            "mk": s.native[1],
            "mn": s.native[2],
        },
    }


# --- vector layers ------------------------------------------------------------------------------


def _strides_over(out: tuple[int, ...], shape: tuple[int, ...], axis: int | None) -> list[int]:
    """Element strides of an input of ``shape`` read at each output coordinate (0 where it
    broadcasts). With ``axis`` a 1-D input runs along that output axis (per-axis parameters)."""
    r = len(out)
    if math.prod(shape) == 1:
        return [0] * r
    if axis is not None and len(shape) == 1:
        st = [0] * r
        st[axis % r] = 1
        return st
    shape = (1,) * (r - len(shape)) + tuple(shape)
    st, acc = [0] * r, 1
    for d in reversed(range(r)):
        st[d] = 0 if shape[d] == 1 and out[d] != 1 else acc
        acc *= shape[d]
    return st


def vector_context(plan: Plan, index: int, v: VectorLayer) -> dict:
    """What the vector template needs for layer ``v`` (plan layer number ``index``)."""
    regions, _ = arena(plan)
    attrs = dict(v.attrs)
    where = f"layer {v.name!r}"
    ins = [n for n in v.inputs if n]
    shapes = _view(plan)[2]
    dims = list(shapes[v.outputs[0]]) or [1]
    axis = attrs.get("axis") if v.fn in ("quantize", "dequantize") else None
    inputs = []
    for k, name in enumerate(ins):
        shape = shapes[name]
        r = regions[name]
        strides = _strides_over(tuple(dims), shape, axis)
        inputs.append(
            {
                "k": k,
                "region": r,
                "dtype": r.dtype,
                "ctype": ctype(r.dtype, where),
                "float": r.dtype in _FLOATS,
                "size": itemsize(r.dtype),
                "strides": strides,
            }
        )
    outputs = []
    for name in v.outputs:
        r = regions[name]
        outputs.append(
            {
                "region": r,
                "dtype": r.dtype,
                "ctype": ctype(r.dtype, where),
                "float": r.dtype in _FLOATS,
                "size": itemsize(r.dtype),
            }
        )
    lo = hi = 0
    if v.fn == "quantize":
        from codesign.sim.numerics import int_range

        lo, hi = int_range(str(attrs["dtype"]))
    cast_to = str(attrs.get("to", ""))
    if v.fn == "cast" and cast_to not in _CTYPES:
        raise PLCodegenError(f"{where}: cast to {cast_to!r} has no PL form")
    return {
        "p": ident(index, v.name),
        "name": v.name,
        "fn": v.fn,
        "dims": dims,
        "count": math.prod(dims),
        "inputs": inputs,
        "outputs": outputs,
        "lo": lo,
        "hi": hi,
        "cast_to": cast_to,
    }


# --- helpers for the kinds' own PL units (movement, transpose, nonlinear, rownorm) ---------------


def row_major(shape: tuple[int, ...]) -> list[int]:
    """Element strides of a row-major tensor of ``shape``."""
    st, acc = [0] * len(shape), 1
    for d in reversed(range(len(shape))):
        st[d] = acc
        acc *= shape[d]
    return st


def broadcast_strides(out: tuple[int, ...], shape: tuple[int, ...]) -> list[int]:
    """Element strides of an input of ``shape`` read at each coordinate of ``out`` (numpy
    broadcasting: 0 along the axes it is repeated on)."""
    return _strides_over(tuple(out), tuple(shape), None)


def shape_of(plan: Plan, name: str) -> tuple[int, ...]:
    """The shape of tensor or constant ``name`` of ``plan``."""
    return _view(plan)[2][name]


def indexed(plan: Plan, layers: list) -> list[tuple[int, object]]:
    """(plan layer number, layer) of each of ``layers`` (what :func:`ident` needs)."""
    at = {id(layer): i for i, layer in enumerate(plan.layers)}
    return [(at[id(layer)], layer) for layer in layers]


def copy_file(
    plan: Plan, index: int, layer: object, what: str, loops: list[dict]
) -> tuple[str, bytes]:
    """``hls/<ident>.h`` of a data mover: ``<ident>_run(arena)`` runs each of ``loops`` in
    order, copying elements (their stored bytes, no arithmetic) from one arena region to
    another. A loop is a dict: ``dims`` (the iteration domain, row-major), ``size`` (bytes per
    element), ``src``/``dst`` (tensor names), ``src_base``/``dst_base`` and
    ``src_strides``/``dst_strides`` (in elements, per axis of ``dims``), and optionally
    ``index``: a dict with ``name`` (an int32/int64 index tensor), ``strides`` (per axis of
    ``dims``), ``extent`` (indices lie in [-extent, extent): negative ones count from the end)
    and ``stride`` (source elements per index step) -- a gather."""
    regions, _ = arena(plan)
    where = f"layer {layer.name!r}"  # type: ignore[attr-defined]
    out = []
    for c in loops:
        dims = list(c["dims"]) or [1]
        if not math.prod(dims):
            continue  # nothing to copy (and no `% 0` in the text)
        loop = {
            **c,
            "dims": dims,
            "count": math.prod(dims),
            "src_strides": list(c["src_strides"]) or [0],
            "dst_strides": list(c["dst_strides"]) or [0],
            "src_at": regions[c["src"]].offset,
            "dst_at": regions[c["dst"]].offset,
            "index": None,
        }
        if c.get("index"):
            r = regions[c["index"]["name"]]
            if r.dtype not in ("int32", "int64"):
                raise PLCodegenError(f"{where}: gather indices must be int32 or int64")
            loop["index"] = {
                **c["index"],
                "strides": list(c["index"]["strides"]) or [0],
                "at": r.offset,
                "dtype": r.dtype,
                "size": itemsize(r.dtype),
            }
        out.append(loop)
    p = ident(index, layer.name)  # type: ignore[attr-defined]
    text = render("copy_layer.h.j2", p=p, name=layer.name, what=what, loops=out)  # type: ignore[attr-defined]
    return f"hls/{p}.h", text


def operand(plan: Plan, name: str, where: str) -> dict:
    """A tensor or constant as a unit template reads or writes it: arena ``offset``, ``dtype``,
    C++ ``ctype``, whether it is ``float`` and its element ``size`` in bytes."""
    r = arena(plan)[0][name]
    return {
        "name": name,
        "offset": r.offset,
        "dtype": r.dtype,
        "ctype": ctype(r.dtype, where),
        "float": r.dtype in _FLOATS,
        "size": itemsize(r.dtype),
    }


# --- the files ----------------------------------------------------------------------------------


def common_header(plan: Plan) -> bytes:
    """hls/pl_common.h: beat type, arena element access, bf16 rounding."""
    return render("pl_common.h.j2", bits=beat_bits(plan))


def gemm_file(plan: Plan, index: int, g: GemmLayer) -> tuple[str, bytes]:
    ctx = gemm_context(plan, index, g)
    return f"hls/{ctx['p']}.h", render("gemm_layer.h.j2", **ctx)


def vector_file(plan: Plan, index: int, v: VectorLayer) -> tuple[str, bytes]:
    ctx = vector_context(plan, index, v)
    return f"hls/{ctx['p']}.h", render("vector_layer.h.j2", **ctx)


def layer_files(plan: Plan, kind: type) -> list[tuple[str, bytes]]:
    """The per-layer HLS files of every layer of type ``kind`` (GemmLayer or VectorLayer)."""
    make = gemm_file if kind is GemmLayer else vector_file
    return [make(plan, i, layer) for i, layer in enumerate(plan.layers) if isinstance(layer, kind)]


@dataclass(frozen=True)
class Stage:
    """One step of an inference as the host program runs it (:func:`stages`).

    ``segment >= 0``: one launch of the PL kernel with argument ``segment``, which runs plan
    layers ``layers`` while the AIE graph runs ``iterations`` graph iterations (0: the graph is
    not run). ``segment == -1``: the Host partition ``layers[0]``, run by onnxruntime on the
    board's ARM cores on the arena between two launches."""

    segment: int
    layers: tuple[int, ...]
    iterations: int = 0


def layer_iterations(plan: Plan) -> dict[int, int]:
    """Graph iterations of each layer that runs on the AIE block, by plan layer index: a GEMM's
    or batched product's (M tile, N tile, K pass) steps, for every head; an AIE-placed nonlinear
    layer's row tiles (:mod:`codesign.hls.aie_nonlinear`). Each iteration is one control record
    per chain on ``rtp_<chain>``."""
    from codesign.hls import aie_nonlinear

    out = {
        i: (1 if isinstance(g, GemmLayer) else g.batch)
        * g.schedule.graph_iterations
        * g.schedule.k_passes
        for i, g in block_layers(plan)
    }
    out.update({i: c["iterations"] for i, c in aie_nonlinear.contexts(plan).items()})
    return out


def stages(plan: Plan) -> list[Stage]:
    """The inference as launches of the PL kernel split at the Host partitions, in plan order
    (:func:`codesign.ir.plan.inference_steps`: the one rule, which the cost model counts
    launches with). A model without Host partitions is one launch, segment 0."""
    iterations = layer_iterations(plan)
    out: list[Stage] = []
    launches = 0
    for what, layers in inference_steps([layer.unit for layer in plan.layers]):
        if what == "host":
            out.append(Stage(-1, layers))
        else:
            out.append(Stage(launches, layers, sum(iterations.get(i, 0) for i in layers)))
            launches += 1
    return out


def sequencer_file(plan: Plan, emitted: frozenset[str] = frozenset()) -> tuple[str, bytes]:
    """hls/codesign_pl.cpp: the one PL kernel the host launches, once per segment of
    :func:`stages` (argument ``segment``; one launch per inference without Host partitions).

    GEMM layers stream through the block; so does a block layer whose kind emitted
    ``hls/<ident>.h`` (a batched product, an AIE-placed nonlinear layer:
    ``<ident>_run(arena, streams...)``); any other layer whose kind emitted ``hls/<ident>.h``
    (the PL units; paths in ``emitted``) runs its ``<ident>_run(arena)``; views (unit "none")
    need nothing; a Host partition ends a segment (the host runs it between launches). Any other
    layer has no PL code yet: its step is an ``#error`` naming it, so the kernel refuses to
    compile (in ``codesign check`` and in v++) instead of skipping it."""
    streams_a, streams_b, streams_c = stream_names(plan)
    regions, size = arena(plan)
    views = _views(plan)
    segments = []
    for stage in stages(plan):
        if stage.segment < 0:
            layer = plan.layers[stage.layers[0]]
            segments.append({"host": _safe_name(layer.name), "model": layer.model.path})
            continue
        segments.append(
            {
                "segment": stage.segment,
                "iterations": stage.iterations,
                "steps": [_step(plan, i, regions, emitted, views) for i in stage.layers],
            }
        )
    return "hls/codesign_pl.cpp", render(
        "sequencer.cpp.j2",
        segments=segments,
        a_streams=streams_a,
        b_streams=streams_b,
        c_streams=streams_c,
        rtp_streams=rtp_names(plan),
        arena_bytes=size,
        model=_safe_name(plan.model),
    )


def _safe_name(name: str) -> str:
    """``name`` as text for a C++ comment or string (model text is data: no quote, no newline)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _step(
    plan: Plan,
    i: int,
    regions: dict[str, Region],
    emitted: frozenset[str],
    views: dict[str, tuple[str, int]],
) -> dict:
    """The sequencer step of plan layer ``i`` (see :func:`sequencer_file`)."""
    layer = plan.layers[i]
    p = ident(i, layer.name)
    if isinstance(layer, GemmLayer):
        # a run-time activation zero point (dynamic quantisation) is read from the arena when
        # the layer runs and sent in every control record (0 without one)
        zp = regions[layer.inputs[1]] if len(layer.inputs) > 1 else None
        return {"kind": "gemm", "p": p, "name": layer.name, "zp": zp}
    if f"hls/{p}.h" in emitted:
        # a layer of the temporal block its kind emits (a batched product), or a layer placed
        # on the AIE block (codesign.hls.aie_nonlinear), streams through the block like a GEMM;
        # the others are PL units of their own
        on_block = isinstance(getattr(layer, "schedule", None), TemporalSchedule) or (
            getattr(layer, "placement", None) == "aie"
        )
        return {"kind": "block" if on_block else "unit", "p": p, "name": layer.name}
    if layer.unit == "none" or layer.outputs[0] in views:
        # a view: its output aliases its input's bytes in the arena
        return {"kind": "none", "p": p, "name": layer.name}
    return {"kind": "missing", "p": p, "name": _safe_name(layer.name), "layer_kind": layer.kind}


def graph_iterations(plan: Plan) -> int:
    """Graph iterations of one inference: every block layer's, over all segments."""
    return sum(st.iterations for st in stages(plan))


def emit_gemm(plan: Plan, layers: list[GemmLayer]) -> Emitted:
    """The PL movers of the GEMM layers (``hls/l<i>_<name>.h``), as an ``emit`` contribution for
    :mod:`codesign.kinds.gemm`. Until the GEMM kind's emitter returns these, the build-level
    writer (:func:`codesign.codegen.vitis.vitis_files`) writes them."""
    return Emitted(files=tuple(layer_files(plan, GemmLayer)))
