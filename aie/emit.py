"""AIE-ML code generation: the GEMM kernels, the block's dispatch kernels, the ADF graph and
aie.cfg, rendered from the Jinja2 templates in ``aie/templates/`` with the plan's GEMM layers.

Called by the GEMM kind's emitter (:func:`codesign.kinds.gemm.emit`; by the batched kind's when
the plan has no GEMM); the text depends only on the plan, so builds stay byte-identical. The
block's layers are the GEMMs and the batched products (:func:`block_layers`; a batched product's
template values come from :func:`codesign.kinds.batched_matmul.aie_context`); the dispatch
kernels switch on the plan layer index that the control records carry. The same contexts drive
the x86 harness of ``codesign check`` (:mod:`codesign.aie.check`).

Conventions shared by the kernels, the graph and the harness (the PL tiler's contract):

- an A tile (m x k) is stored in native blocks ``[m/M][k/K]``, each M x K row-major
  (``tempus.a/1``: :func:`codesign.ir.layouts.a_tile_order`);
- a B tile is the core's slice of the ``tempus.b/1`` stream (blocks ``[k/K][n/N]`` of K x N);
- a C tile (m x n) leaves the last core in native blocks ``[m/M][n/N]``, each M x N row-major
  (``tempus.c/1``: :func:`codesign.ir.layouts.c_tile_order`);
- every buffer port is sized for the largest layer's tile, in whole PLIO beats
  (:func:`port_bytes`): a tile sits at byte 0 of its buffer, the PL pads the rest of each A/B
  buffer with zeros and drops the rest of each C buffer, since a port fires only on a whole
  buffer and an output buffer leaves whole; C and the bf16 carry loop are asynchronous buffers,
  so C leaves once per tile (after its last K pass) and the carry only between passes;
- every core reads, per invocation, one control record from its chain's control stream (PLIO
  ``rtp_<chain>``, 32-bit, broadcast to the chain's cores; the PL sequencer writes it): layer,
  pass, passes, za, then the chain's epilogue words for the tile, zero-padded to the largest
  layer's (docs/pl_streams.md). No run-time parameter comes from the PS, so the host launches once
  per inference;
- the epilogue array (int32 words, read by the last core from its control record) holds, for the tile's
  n columns: bias (fp32 bits for bf16; for acc64 the low part ``bias & (2**31 - 1)`` and then
  the high part ``bias >> 31``), colsum, multiplier, shift, each section present when the layer
  has it (multiplier and shift one word when per-tensor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from codesign.aie import nonlinear
from codesign.boards import load as load_board
from codesign.ir.dtypes import ACC_TAG
from codesign.ir.plan import GemmLayer, Layer, Plan

#: C++ element types of the dtypes a kernel reads or writes
CTYPE = {
    "int8": "int8",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "bf16": "bfloat16",
    "float32": "float",
}
CSIZE = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "bfloat16": 2, "float": 4}
#: AIE API rounding_mode names of codesign's SRS modes (codesign.sim.numerics.ROUNDING_MODES)
ROUNDING_API = {
    "floor": "floor",
    "ceil": "ceil",
    "pos_inf": "positive_inf",
    "neg_inf": "negative_inf",
    "sym_inf": "symmetric_inf",
    "sym_zero": "symmetric_zero",
    "conv_even": "conv_even",
    "conv_odd": "conv_odd",
}


#: Width of the control PLIOs (``rtp_<chain>``): one 32-bit word per beat.
CONTROL_BITS = 32
#: Words of a control record before the epilogue words: layer, pass, passes, za.
CONTROL_HEADER_WORDS = 4


def rtp_name(chain: int) -> str:
    """PLIO name of chain ``chain``'s control stream (the PL sequencer's ``rtp_<chain>``)."""
    return f"rtp_{chain}"


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("codesign.aie", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # C++ text; names from the model go through comment_safe
    )


def comment_safe(text: str) -> str:
    """A model-given name made safe inside a ``//`` comment: printable ASCII without the
    backslash (a line break would start code; a backslash at the end of the line would splice
    the next line into the comment)."""
    return re.sub(r"[^\x20-\x5b\x5d-\x7e]", "?", str(text))


def positions(cascade: int) -> tuple[str, ...]:
    """Kernel positions along a cascade chain of ``cascade`` cores."""
    if cascade == 1:
        return ("only",)
    if cascade == 2:
        return ("first", "last")
    return ("first", "middle", "last")


@dataclass(frozen=True)
class EpilogueLayout:
    """Offsets (int32 words) of the sections of one tile's epilogue array."""

    bias: int | None
    bias_hi: int | None
    colsum: int | None
    mult: int | None
    shift: int | None
    per_channel: bool
    words: int
    #: batched products (:mod:`codesign.kinds.batched_matmul`): the tile's m row sums of
    #: ``a - za`` and the B zero point (one word)
    rowsum: int | None = None
    zb: int | None = None


def epilogue_layout(g: Layer) -> EpilogueLayout:
    """The epilogue array layout of layer ``g`` (see the module docstring); a batched product's
    is its kind's (:func:`codesign.kinds.batched_matmul.epilogue_layout`)."""
    if not isinstance(g, GemmLayer):
        from codesign.kinds.batched_matmul import epilogue_layout as batched_layout

        return batched_layout(g)
    n = g.schedule.tile.n
    off = 0
    bias = bias_hi = colsum = mult = shift = None
    if g.bias is not None:
        bias, off = off, off + n
        if ACC_TAG[g.dtype] == "acc64":  # an int64 bias as hi * 2**31 + lo, lo in [0, 2**31)
            bias_hi, off = off, off + n
    if g.colsum is not None and len(g.inputs) > 1:
        colsum, off = off, off + n
    per_channel = False
    if g.requant is not None:
        per_channel = any(tuple(f.shape) != (1,) for f in (g.requant.multiplier, g.requant.shift))
        width = n if per_channel else 1
        mult, off = off, off + width
        shift, off = off, off + width
    return EpilogueLayout(bias, bias_hi, colsum, mult, shift, per_channel, max(off, 1))


def gemm_layers(plan: Plan) -> list[GemmLayer]:
    """The plan's GEMM layers in execution order (their index names their kernel)."""
    return [layer for layer in plan.layers if isinstance(layer, GemmLayer)]


def group_tags(plan: Plan) -> list[str]:
    """The accumulator tags of the plan's kernel groups, in group order: one set of
    ``chains x cascade`` cores per tag (a cascade port carries one accumulator type). The
    AIE-placed nonlinear layers run in group 0."""
    return sorted({ACC_TAG[g.dtype] for _, g in block_layers(plan)})


def group_of(plan: Plan, layer: Layer) -> int:
    """The kernel group that runs ``layer`` (0 for an AIE-placed nonlinear layer)."""
    dtype = getattr(layer, "dtype", None)
    tags = group_tags(plan)
    return tags.index(ACC_TAG[dtype]) if dtype in ACC_TAG and ACC_TAG[dtype] in tags else 0


def c_plio_name(c: int, group: int, groups: int) -> str:
    """PLIO name of the C stream leaving chain ``c`` of kernel group ``group`` (of ``groups``):
    ``c_<c>`` with one group, ``c_g<group>_<c>`` with several (each group's last cores need PLIOs
    of their own: an output PLIO has one source)."""
    return f"c_{c}" if groups <= 1 else f"c_g{group}_{c}"


def block_layers(plan: Plan) -> list[tuple[int, Layer]]:
    """(plan layer index, layer) of every layer that runs on the temporal block, in execution
    order: the GEMMs and the batched products (:mod:`codesign.kinds.batched_matmul`). The plan
    layer index is what the control records name (docs/pl_streams.md)."""
    from codesign.kinds.batched_matmul import BatchedMatMulLayer

    return [
        (i, layer)
        for i, layer in enumerate(plan.layers)
        if isinstance(layer, GemmLayer | BatchedMatMulLayer)
    ]


def _block_context(plan: Plan, index: int, layer: Layer, plan_index: int) -> dict[str, Any]:
    """The template values of block layer ``layer`` (the ``index``-th of :func:`block_layers`,
    plan layer ``plan_index``)."""
    if isinstance(layer, GemmLayer):
        return layer_context(plan, layer, index, plan_index)
    from codesign.kinds.batched_matmul import aie_context

    return aie_context(plan, layer, index, plan_index)


def output_ctype(g: GemmLayer) -> str:
    if g.dtype == "bf16":
        return "float"
    return CTYPE[g.requant.dtype] if g.requant is not None else "int32"


def layer_context(
    plan: Plan, g: GemmLayer, index: int, plan_index: int | None = None
) -> dict[str, Any]:
    """Template values of GEMM layer ``g`` (the ``index``-th layer of the block, plan layer
    ``plan_index``: the number its control records carry; ``index`` when not given)."""
    s = g.schedule
    nm, nk, nn = s.native
    a_dtype = plan.value_spec(g.inputs[0]).dtype
    ep = epilogue_layout(g)
    doc = []
    if g.dtype == "bf16":
        doc = ["fp32 bias add" if g.bias else "", "ReLU" if g.relu else ""]
    else:
        doc = [
            "bias add in the accumulator" if g.bias else "",
            "- za * colsum" if ep.colsum is not None else "",
            f"SRS by {g.acc_shift} (conv_even, saturating to int32)",
            "ReLU" if g.relu else "",
            f"requantise to {g.requant.dtype} ({g.requant.rounding})" if g.requant else "",
        ]
    return {
        "layer": comment_safe(g.name),
        "model": comment_safe(plan.model or "the model"),
        "index": index,
        "id": index if plan_index is None else plan_index,  # what the control records name
        "fn": f"gemm{index}",
        "header": f"gemm{index}.h",
        "dtype": g.dtype,
        "g": {"M": s.M, "K": s.K, "N": s.N},
        "chains": s.block.chains,
        "cascade": s.block.cascade,
        "m": s.tile.m,
        "k": s.tile.k,
        "n": s.tile.n,
        "nm": nm,
        "nk": nk,
        "nn": nn,
        "k_passes": s.k_passes,
        "ta": "bfloat16" if g.dtype == "bf16" else CTYPE[a_dtype],
        "tb": "bfloat16" if g.dtype == "bf16" else CTYPE[g.weight.dtype],
        "tag": ACC_TAG[g.dtype],
        "tout": output_ctype(g),
        "bias": g.bias is not None,
        "colsum": ep.colsum is not None,
        "relu": g.relu,
        "acc_shift": g.acc_shift,
        "requant": g.requant is not None,
        "per_channel": ep.per_channel,
        "zero_point": g.requant.zero_point if g.requant else 0,
        "rounding_api": ROUNDING_API[g.requant.rounding] if g.requant else "conv_even",
        "off": {
            "bias": ep.bias,
            "bias_hi": ep.bias_hi,
            "colsum": ep.colsum,
            "mult": ep.mult,
            "shift": ep.shift,
            "rowsum": ep.rowsum,
            "zb": ep.zb,
        },
        "rowsum": ep.rowsum is not None,
        "wrap": False,
        "epi_words": ep.words,
        "epilogue_doc": ", ".join(d for d in doc if d) or "none",
        "positions": positions(s.block.cascade),
    }


#: What a compiled GEMM kernel depends on: its tile variant (the per-core tile and native shape)
#: and the form of its epilogue. Layers equal in all of these run one kernel.
KERNEL_FIELDS = (
    "dtype", "m", "k", "n", "nm", "nk", "nn", "ta", "tb", "tag", "tout", "bias", "colsum",
    "relu", "acc_shift", "requant", "per_channel", "zero_point", "rounding_api", "off",
    "epi_words", "chains", "cascade", "positions", "rowsum", "wrap",
)  # fmt: skip
#: Layer names listed in a shared kernel's header comment before "and N more".
_NAMES_SHOWN = 4


def _frozen(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return tuple(_frozen(x) for x in v)
    return v


def share_kernels(contexts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One kernel per tile variant and epilogue form: layers whose :data:`KERNEL_FIELDS` agree
    run the same ``gemm<v>`` kernel (``v`` in first-use order), so the graph's program memory
    holds a kernel per variant, not per layer. Sets each layer context's ``fn``/``header``/
    ``kernel`` to its shared kernel's and returns the kernel contexts (the first member's values,
    the largest K pass count of the members, their names in ``layer``). The epilogue constants
    (``acc_shift``, zero point, rounding) are still compiled in: layers differing in them get
    kernels of their own, of the same variant."""
    keys: dict[tuple, int] = {}
    members: list[list[dict[str, Any]]] = []
    for c in contexts:
        key = tuple(_frozen(c[f]) for f in KERNEL_FIELDS)
        v = keys.setdefault(key, len(keys))
        if v == len(members):
            members.append([])
        members[v].append(c)
        c.update(fn=f"gemm{v}", header=f"gemm{v}.h", kernel=v)
    kernels = []
    for group in members:
        names = [c["layer"] for c in group]
        shown = ", ".join(names[:_NAMES_SHOWN])
        if len(names) > _NAMES_SHOWN:
            shown += f" and {len(names) - _NAMES_SHOWN} more"
        kernels.append({**group[0], "layer": shown, "k_passes": max(c["k_passes"] for c in group)})
    return kernels


def _port_lists(pos: str, carry: bool) -> tuple[list[str], list[str]]:
    """The dispatch kernel's input and output ports in ADF order (in[i], out[i]). No port is a
    run-time parameter from the PS: the layer, pass and epilogue arrive on the ``ctl`` stream."""
    ins = ["a", "b"]
    if pos in ("middle", "last"):
        ins.append("cin")
    if carry and pos in ("first", "only"):
        ins.append("carry_in")
    ins.append("ctl")  # the chain's control stream (rtp_<chain>): every record, in order
    outs = ["cout"] if pos in ("first", "middle") else ["c"] + (["carry_out"] if carry else [])
    return ins, outs


def graph_context(plan: Plan) -> dict[str, Any]:
    """Template values of the block's dispatch kernels, graph and aie.cfg; also what the
    graph-vs-plan test and the harness read (cores, PLIOs, buffers, connections)."""
    block = block_layers(plan)
    layers = [layer for _, layer in block]
    board = load_board(plan.board)
    contexts = [_block_context(plan, i, g, pi) for i, (pi, g) in enumerate(block)]
    kernels = share_kernels(contexts)
    C, L = plan.block.chains, plan.block.cascade
    pos = positions(L)
    groups = []
    for tag in sorted({c["tag"] for c in contexts}):
        members = [c for c in contexts if c["tag"] == tag]
        groups.append(
            {
                "tag": tag,
                "kernel_prefix": f"core_{tag}",
                "layers": members,
                "carry": any(c["dtype"] == "bf16" and c["k_passes"] > 1 for c in members)
                or tag == "accfloat",
            }
        )

    def size(ctx: dict[str, Any], what: str) -> int:
        if what == "a":
            return ctx["m"] * ctx["k"] * CSIZE[ctx["ta"]]
        if what == "b":
            return ctx["k"] * ctx["n"] * CSIZE[ctx["tb"]]
        if what == "c":
            return ctx["m"] * ctx["n"] * CSIZE[ctx["tout"]]
        return ctx["m"] * ctx["n"] * 4  # carry: fp32 sums

    a_bytes = max((size(c, "a") for c in contexts), default=0)
    b_bytes = max((size(c, "b") for c in contexts), default=0)
    c_bytes = max((size(c, "c") for c in contexts), default=0)
    carry_bytes = max((size(c, "carry") for c in contexts), default=0)
    epi_words = max((c["epi_words"] for c in contexts), default=1)
    # the AIE-placed nonlinear layers run in the first group (codesign.aie.nonlinear); the
    # buffers grow to one row per core when a row does not fit the GEMMs' buffers
    nl_layers = []
    if groups:
        nl_layers = nonlinear.layer_contexts(
            plan, a_bytes, c_bytes, groups[0]["tag"], groups[0]["kernel_prefix"]
        )
        for gi, grp in enumerate(groups):
            grp["nl_layers"] = nl_layers if gi == 0 else []
    # every PLIO-fed port holds whole stream beats: the PL sends whole beats, and a beat that
    # straddled two buffers would shift every later buffer (see port_bytes)
    beat = max(board.plio.widths_bits) // 8
    a_bytes = _whole_beats(max([a_bytes, *(v["a_bytes"] for v in nl_layers)]), beat)
    b_bytes = _whole_beats(max([b_bytes, *(v["b_bytes"] for v in nl_layers)]), beat)
    c_bytes = _whole_beats(max([c_bytes, *(v["c_bytes"] for v in nl_layers)]), beat)
    # memory-tile buffers of the reuse dataflows (codesign.cost.dataflow): A tiles held for
    # a_panel / a_resident, B tiles held for b_resident; one graph serves every layer, so the
    # graph has the buffers any layer's plan uses
    plans = {g.schedule.reuse_plan for g in layers if g.schedule.dataflow != "tempus"}
    reuse_a = bool(plans & {"a_panel", "a_resident"})
    reuse_b = "b_resident" in plans

    cores, plios, buffers, rtps, conns, dims = [], [], [], [], [], []
    for l_ in range(L):
        plios.append({"kind": "input", "var": f"a_in_{l_}", "name": f"a_{l_}"})
    for c in range(C):
        for l_ in range(L):
            plios.append({"kind": "input", "var": f"b_in_{c}_{l_}", "name": f"b_{c}_{l_}"})
    for c in range(C):
        plios.append(
            {"kind": "input", "var": f"rtp_in_{c}", "name": rtp_name(c), "bits": CONTROL_BITS}
        )
    for gi in range(len(groups)):
        for c in range(C):
            name = c_plio_name(c, gi, len(groups))
            var = f"c_out_{c}" if len(groups) <= 1 else f"c_out_g{gi}_{c}"
            plios.append({"kind": "output", "var": var, "name": name})
    for gi, grp in enumerate(groups):
        gp = f"g{gi}_" if len(groups) > 1 else ""
        if reuse_a:
            for l_ in range(L):
                var = f"{gp}a_reuse_{l_}"
                buffers.append(
                    {
                        "var": var,
                        "doc": f"memory tile: A tiles of cascade position {l_}, reused by every chain and N tile",
                        "bytes": a_bytes,
                        "inputs": 1,
                        "outputs": C,
                    }
                )
                conns.append({"kind": "", "src": f"a_in_{l_}.out[0]", "dst": f"{var}.in[0]"})
        for c in range(C):
            if grp["carry"]:
                var = f"{gp}carry_{c}"
                buffers.append(
                    {
                        "var": var,
                        "doc": f"memory tile: chain {c}'s fp32 sums carried from its last core to its first between K passes",
                        "bytes": carry_bytes,
                        "inputs": 1,
                        "outputs": 1,
                    }
                )
            for l_ in range(L):
                p = (
                    pos[0]
                    if L == 1
                    else ("first" if l_ == 0 else "last" if l_ == L - 1 else "middle")
                )
                var = f"{gp}core_{c}_{l_}"
                cores.append(
                    {
                        "var": var,
                        "fn": f"{grp['kernel_prefix']}_{p}",
                        "group": f"_{grp['tag']}",
                        "chain": c,
                        "position": l_,
                    }
                )
                ins, outs = _port_lists(p, grp["carry"])
                src_a = f"{gp}a_reuse_{l_}.out[{c}]" if reuse_a else f"a_in_{l_}.out[0]"
                conns.append({"kind": "", "src": src_a, "dst": f"{var}.in[{ins.index('a')}]"})
                src_b = f"b_in_{c}_{l_}.out[0]"
                if reuse_b:
                    bvar = f"{gp}b_resident_{c}_{l_}"
                    buffers.append(
                        {
                            "var": bvar,
                            "doc": f"memory tile: core ({c}, {l_})'s B tiles, resident across M tiles",
                            "bytes": b_bytes,
                            "inputs": 1,
                            "outputs": 1,
                        }
                    )
                    conns.append({"kind": "", "src": src_b, "dst": f"{bvar}.in[0]"})
                    src_b = f"{bvar}.out[0]"
                conns.append({"kind": "", "src": src_b, "dst": f"{var}.in[{ins.index('b')}]"})
                dims.append({"port": f"{var}.in[{ins.index('a')}]", "size": a_bytes, "role": "a"})
                dims.append({"port": f"{var}.in[{ins.index('b')}]", "size": b_bytes, "role": "b"})
                if "cin" in ins:
                    prev = f"{gp}core_{c}_{l_ - 1}"
                    conns.append(
                        {
                            "kind": "cascade",
                            "src": f"{prev}.out[0]",
                            "dst": f"{var}.in[{ins.index('cin')}]",
                        }
                    )
                if "carry_in" in ins:
                    conns.append(
                        {
                            "kind": "",
                            "src": f"{gp}carry_{c}.out[0]",
                            "dst": f"{var}.in[{ins.index('carry_in')}]",
                        }
                    )
                    dims.append(
                        {
                            "port": f"{var}.in[{ins.index('carry_in')}]",
                            "size": carry_bytes,
                            "role": "carry_in",
                        }
                    )
                if "c" in outs:
                    conns.append(
                        {
                            "kind": "",
                            "src": f"{var}.out[{outs.index('c')}]",
                            "dst": f"c_out_{c}.in[0]"
                            if len(groups) <= 1
                            else f"c_out_g{gi}_{c}.in[0]",
                        }
                    )
                    dims.append(
                        {"port": f"{var}.out[{outs.index('c')}]", "size": c_bytes, "role": "c"}
                    )
                if "carry_out" in outs:
                    conns.append(
                        {
                            "kind": "",
                            "src": f"{var}.out[{outs.index('carry_out')}]",
                            "dst": f"{gp}carry_{c}.in[0]",
                        }
                    )
                    dims.append(
                        {
                            "port": f"{var}.out[{outs.index('carry_out')}]",
                            "size": carry_bytes,
                            "role": "carry_out",
                        }
                    )
                # the chain's control stream, broadcast to each of its cores
                conns.append(
                    {
                        "kind": "",
                        "src": f"rtp_in_{c}.out[0]",
                        "dst": f"{var}.in[{ins.index('ctl')}]",
                    }
                )
    beat_bits = max(board.plio.widths_bits)
    for p in plios:
        p.setdefault("bits", beat_bits)
    return {
        "model": comment_safe(plan.model or "the model"),
        "board": plan.board,
        "platform": f"xilinx_{plan.board}_base",
        "chains": C,
        "cascade": L,
        "positions": pos,
        "groups": groups,
        "layers": contexts,
        "kernels": kernels,
        "nl_layers": nl_layers,
        "plio_in": L + C * L,
        "control_in": C,
        "control_words": CONTROL_HEADER_WORDS + epi_words,
        "plio_out": C * max(1, len(groups)),  # a C PLIO per chain and kernel group
        "plio_bits": beat_bits,
        "plio_mhz": board.pl.default_clock_mhz,
        # the AIE compiler may share a core between kernels whose ratios sum to <= 1; a block core
        # runs one kernel, so it asks for the whole core
        "runtime_ratio": "1.0",
        "placement_note": "The plan fixes no core placement, so no location constraint is given: "
        "each cascade makes its chain a row of neighbours, which the AIE compiler places.",
        "cores": cores,
        "plios": plios,
        "buffers": buffers,
        "rtps": rtps,
        "connections": conns,
        "dims": dims,
        "a_bytes": a_bytes,
        "b_bytes": b_bytes,
        "c_bytes": c_bytes,
        "carry_bytes": carry_bytes,
        "epi_words": epi_words,
    }


def _whole_beats(nbytes: int, beat: int) -> int:
    """``nbytes`` rounded up to whole stream beats of ``beat`` bytes."""
    return -(-nbytes // beat) * beat


@dataclass(frozen=True)
class PortBytes:
    """Declared sizes (bytes) of the block's kernel buffer ports: what every transfer into an
    ``a``/``b`` port and out of a ``c`` port must carry (the graph's ``adf::dimensions``), and the
    ``carry`` buffers between K passes. ``beat``: bytes of one PL<->AIE stream beat."""

    a: int
    b: int
    c: int
    carry: int
    beat: int


_PORTS: list = []


def port_bytes(plan: Plan) -> PortBytes:
    """The declared buffer sizes of the plan's one graph (:func:`graph_context`).

    One graph serves every layer, so each port is sized for the largest layer's tile (the
    AIE-placed nonlinear layers included) and rounded up to whole stream beats. On hardware a
    buffer port fires its kernel only on a whole buffer and an output buffer leaves whole, so
    every layer's PL movers pad each tile they send to these sizes (zeros after the tile: the
    kernels read their variant's tile from byte 0) and read whole C buffers, dropping what
    follows the tile; the cost model counts the padded bytes on the PLIOs."""
    beat = max(load_board(plan.board).plio.widths_bits) // 8
    g = shared_graph_context(plan)
    if g is None:
        return PortBytes(0, 0, 0, 0, beat)
    return PortBytes(g["a_bytes"], g["b_bytes"], g["c_bytes"], g["carry_bytes"], beat)


def shared_graph_context(plan: Plan) -> dict[str, Any] | None:
    """:func:`graph_context` of ``plan``, computed once for the last plan (by identity: every
    layer's emitter and cost entry asks) and shared: read it, do not change it. None when the
    plan has no block layer."""
    if _PORTS and _PORTS[0] is plan:
        return _PORTS[1]
    g = graph_context(plan) if block_layers(plan) else None
    _PORTS[:] = [plan, g]
    return g


def render(template: str, **ctx: Any) -> bytes:
    """Render one template of ``aie/templates`` to bytes."""
    return _env().get_template(template).render(**ctx).encode()


def emit_files(plan: Plan) -> tuple[tuple[str, bytes], ...]:
    """Every AIE file of the plan's build, as (path relative to the build, bytes)."""
    if not block_layers(plan):
        return ()
    gctx = graph_context(plan)
    files: list[tuple[str, bytes]] = []
    for ctx in gctx["kernels"]:  # one per tile variant and epilogue form
        files.append((f"aie/kernels/{ctx['fn']}.cc", render("gemm_kernel.cc.j2", **ctx)))
        files.append((f"aie/kernels/{ctx['fn']}.h", render("gemm_kernel.h.j2", **ctx)))
    if gctx["nl_layers"]:  # the nonlinear kernels' arithmetic (their files: their kinds' emit)
        files.append((f"aie/kernels/{nonlinear.NL_MATH}", nonlinear.nl_math_source()))
    files.append(("aie/kernels/dispatch.h", render("dispatch.h.j2", **gctx)))
    for grp in gctx["groups"]:
        ctx = {**gctx, **grp, "group": grp["tag"], "all_bf16": grp["tag"] == "accfloat"}
        files.append((f"aie/kernels/dispatch_{grp['tag']}.cc", render("dispatch.cc.j2", **ctx)))
    files.append(("aie/graph.h", render("graph.h.j2", **gctx)))
    files.append(("aie/graph.cpp", render("graph.cpp.j2", **gctx)))
    files.append(("aie.cfg", render("aie_cfg.j2", **gctx)))
    return tuple(files)
