"""The nonlinear kind: element-wise math placed on a PL vector unit or the AIE-ML vector cores.

KernelGraph op :class:`~codesign.ir.nonlinear.Nonlinear`, plan layer
:class:`~codesign.ir.nonlinear.NonlinearLayer`. Functions (the one table is
:data:`codesign.sim.nonlinear.ELEMENTWISE`): exp, erf, tanh, sigmoid, gelu (erf or tanh form),
silu, sqrt, reciprocal, div, pow by a constant, neg, not, nonzero (cast to bool), equal, where,
expand. The arithmetic is :mod:`codesign.sim.numerics.nonlinear`.

The planner asks the cost model (:func:`codesign.cost.nonlinear.choose_placement`) where each
layer runs and records it in the layer (``placement``, which is its ``unit``); the cost entry
reports the chosen placement's cycles, time and resources beside the other placement's time.
The emitter writes ``kinds/nonlinear.json`` (each layer's function, placement and modelled
figures); for each layer placed on the PL its unit ``hls/<ident>.h`` (with ``hls/nl_math.h``,
the arithmetic in C++); for the unary float functions placed on the AIE, their block kernels and
PL sequencer steps (:mod:`codesign.aie.nonlinear`, :mod:`codesign.hls.aie_nonlinear`). A layer
without generated code has its sequencer step marked missing (``#error``), never skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign.cost.nonlinear import NonlinearWork, choose_placement, estimate_nonlinear
from codesign.cost.variants import padding_penalty_s, ports_of, ports_with_rows
from codesign.ir.graph import TensorType, numpy_dtype
from codesign.ir.nonlinear import PLACEMENTS, Nonlinear, NonlinearLayer
from codesign.ir.plan import GemmLayer, Layer, Plan
from codesign.kinds.registry import Cost, Emitted, LayerMemory, OpKind, no_output_scale, register
from codesign.sim import nonlinear as table

if TYPE_CHECKING:
    from codesign.boards import Board
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker


def _nbytes(shape: tuple[int, ...], dtype: str) -> int:
    return TensorType(tuple(shape), dtype).nbytes


def work_of(
    shapes: dict[str, tuple[tuple[int, ...], str]],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    constants: set[str] | Any,
    ops: int,
    row: bool,
    function: str = "",
) -> NonlinearWork:
    """The modelled work of a layer: elements and bytes from its tensors (``shapes``: name ->
    (shape, dtype)); constants (parameters) are not streamed from DDR per element."""
    out_shape, _ = shapes[outputs[0]]
    ins = [n for n in inputs if n and n not in constants]
    elements = max([math.prod(out_shape)] + [math.prod(shapes[n][0]) for n in ins])
    row_len = shapes[inputs[0]][0][-1] if row and shapes[inputs[0]][0] else 0
    return NonlinearWork(
        elements=elements,
        ops=ops,
        bytes_in=sum(_nbytes(*shapes[n]) for n in ins),
        bytes_out=sum(_nbytes(*shapes[o]) for o in outputs),
        row=row_len,
        function=function,
    )


#: what the planner has put on the PL so far in one planning run (PL units by name, their sum)
_PL_STATE = "nonlinear_pl_units"


def _rows(fn: str, shape: tuple[int, ...], inputs: tuple[str, ...]) -> tuple[int, int, int]:
    """(row length in, row length out, parameter rows) of a nonlinear layer on the block."""
    n = shape[-1] if shape else 1
    return n, 1 if fn == "reducemean" else n, sum(1 for name in inputs[1:] if name)


def _has_aie_kernel(op: Any) -> bool:
    from codesign.aie import nonlinear as aie_nl

    fns = aie_nl.ROW_FUNCTIONS if op.kind == "rownorm" else aie_nl.ELEMENT_FUNCTIONS
    return op.fn in fns


def _planned_port_penalty(ctx: PlanContext, op: Any, shapes: dict) -> float:
    """What placing ``op`` on the AIE would cost the weight GEMMs planned in this graph: their
    tiles padded to the ports its rows need (0 when they fit the GEMMs' ports)."""
    from codesign.kinds.gemm import variant_ports, variant_tiles

    ports = variant_ports(ctx)
    if ports is None or not _has_aie_kernel(op):
        return 0.0
    C, L = ctx.block.chains, ctx.block.cascade
    grown = ports_with_rows(
        ctx.board, ports, C, L, *_rows(op.fn, shapes[op.inputs[0]][0], op.inputs)
    )
    return padding_penalty_s(ctx.board, variant_tiles(ctx), C, L, ports, grown)


#: the last plan's weight GEMMs (workload, tile) and their variants' ports, by identity
_PLAN_GEMMS: list = []


def port_penalty_in_plan(plan: Plan, board: Board, layer: Any) -> float:
    """The same figure for ``layer`` in a finished plan: its weight GEMMs' tiles and the ports
    of their variants (:func:`codesign.cost.variants.ports_of`), as the planner saw them."""
    from codesign.cost.workload import GemmWorkload

    if not _has_aie_kernel(layer):
        return 0.0
    if not (_PLAN_GEMMS and _PLAN_GEMMS[0] is plan):  # once per plan, not once per layer
        gemms = [
            (GemmWorkload(g.schedule.M, g.schedule.K, g.schedule.N, g.dtype), g.schedule.tile)
            for g in plan.layers
            if isinstance(g, GemmLayer)
        ]
        _PLAN_GEMMS[:] = [
            plan,
            gemms,
            ports_of(board, list(dict.fromkeys((w.dtype, t) for w, t in gemms))),
        ]
    _, gemms, ports = _PLAN_GEMMS
    if ports is None:
        return 0.0
    C, L = plan.block.chains, plan.block.cascade
    shape = tuple(plan.value_spec(layer.inputs[0]).shape)
    grown = ports_with_rows(board, ports, C, L, *_rows(layer.fn, shape, layer.inputs))
    return padding_penalty_s(board, gemms, C, L, ports, grown)


def place(ctx: PlanContext, op: Any, ops: int, row: bool) -> str:
    """The cost model's placement of ``op`` on the context's board and block.

    The PL units chosen so far in this plan are remembered on the context: a layer of a
    function whose unit exists reuses it, and a new unit goes to the PL only while the PL
    (the block's data movers plus the units) fits the board."""
    from codesign.cost.calibration import TEMPUS_PL_USAGE

    kg = ctx.kg
    shapes = {n: (kg.types[n].shape, kg.types[n].dtype) for n in (*op.inputs, *op.outputs) if n}
    work = work_of(shapes, op.inputs, op.outputs, set(kg.constants), ops, row, _function(op))
    units, used = getattr(ctx, _PL_STATE, ({}, TEMPUS_PL_USAGE))
    best, options = choose_placement(
        ctx.board,
        op.name,
        work,
        block=(ctx.block.chains, ctx.block.cascade),
        kind=op.kind,
        pl_in_use=used,
        units=set(units),
        aie_extra_s=_planned_port_penalty(ctx, op, shapes),
    )
    if best == "pl":
        unit = options["pl"].resources
        if unit.pl_block not in units:
            units = {**units, unit.pl_block: unit.pl}
            used = used + unit.pl
        setattr(ctx, _PL_STATE, (units, used))
    return best


def plan(ctx: PlanContext, op: Nonlinear) -> NonlinearLayer:
    """The layer as the op, placed by the cost model; constant inputs become plan constants."""
    for name in op.inputs:
        if name and ctx.kg.is_const(name):
            ctx.constant(name)
    fn = table.ELEMENTWISE[op.fn]
    placement = place(ctx, op, fn.ops, row=False)
    return NonlinearLayer(
        op.name, op.inputs, op.outputs, fn=op.fn, attrs=op.attrs, placement=placement
    )


def cast_outputs(sim: Simulator, layer: Layer, values: tuple[np.ndarray, ...]) -> tuple:
    """Each result in its plan tensor's storage dtype (bool results are uint8 0/1)."""
    return tuple(
        np.asarray(v).astype(numpy_dtype(sim.plan.tensor(o).dtype), copy=False)
        for o, v in zip(layer.outputs, values, strict=True)
    )


def execute(sim: Simulator, layer: NonlinearLayer, args: list) -> tuple[np.ndarray, ...]:
    y = table.apply(
        table.ELEMENTWISE, layer.fn, [x for x in args if x is not None], dict(layer.attrs)
    )
    return cast_outputs(sim, layer, (y,))


def check_common(ck: PlanChecker, layer: Any, fns: dict[str, table.Function]) -> list[str]:
    """What both nonlinear kinds check: a known function, its input count, a placement, float
    inputs where the function needs them. Returns the named inputs."""
    fn = fns.get(layer.fn)
    if fn is None:
        ck.fail(f"fn must be one of {', '.join(sorted(fns))}, not {layer.fn!r}")
    ck.count(layer, tuple(range(fn.arity, fn.arity + fn.optional + 1)), 1)
    ins = [n for n in layer.inputs if n]
    if len(ins) != len(layer.inputs) and layer.inputs[: len(ins)] != tuple(ins):
        ck.fail("omitted optional inputs must come last")
    if layer.placement not in PLACEMENTS:
        ck.fail(f"placement must be one of {', '.join(PLACEMENTS)}, not {layer.placement!r}")
    if fn.floats:
        for n in ins:
            if ck.dtypes[n] != "float32":
                ck.fail(f"{layer.fn} takes float32 inputs, not {ck.dtypes[n]} ({n!r})")
        if ck.dtypes[layer.outputs[0]] != "float32":
            ck.fail(f"{layer.fn} writes float32, not {ck.dtypes[layer.outputs[0]]}")
    return ins


def check(ck: PlanChecker, v: NonlinearLayer) -> None:
    """A known function with its inputs, broadcastable shapes, valid attributes."""
    ins = check_common(ck, v, table.ELEMENTWISE)
    fn = table.ELEMENTWISE[v.fn]
    attrs = dict(v.attrs)
    out = ck.shapes[v.outputs[0]]
    shapes = [ck.shapes[n] for n in ins]
    if v.fn == "expand":
        shapes.append(tuple(int(d) for d in attrs.get("shape", ())))
    if fn.broadcasts:
        try:
            ok = np.broadcast_shapes(*shapes, out) == out
        except ValueError:
            ok = False
        if not ok:
            ck.fail(f"input shapes must broadcast to the output shape {list(out)}")
    elif shapes[0] != out:
        ck.fail(f"{v.fn} must keep the shape {list(shapes[0])}, not {list(out)}")
    if v.fn == "gelu" and attrs.get("approximate", "none") not in ("none", "tanh"):
        ck.fail(f"gelu approximate must be 'none' or 'tanh', not {attrs.get('approximate')!r}")
    if v.fn == "pow":
        if ins[1] not in ck.plan.constants:
            ck.fail("pow's exponent must be a constant")
        if math.prod(ck.shapes[ins[1]]) != 1:
            ck.fail("pow's exponent must be a single value")
    if v.fn in ("equal", "not", "nonzero") and ck.dtypes[v.outputs[0]] != "uint8":
        ck.fail(f"{v.fn} writes a bool tensor (uint8 0/1), not {ck.dtypes[v.outputs[0]]}")


def layer_work(plan: Plan, layer: Any, ops: int, row: bool) -> NonlinearWork:
    names = [n for n in (*layer.inputs, *layer.outputs) if n]
    shapes = {}
    for n in names:
        t = plan.value_spec(n)
        shapes[n] = (tuple(t.shape), t.dtype)
    return work_of(shapes, layer.inputs, layer.outputs, plan.constants, ops, row, _function(layer))


def _function(x: Any) -> str:
    """The unit a layer needs: its kind, function and attributes (GELU's form...)."""
    attrs = ",".join(f"{k}={v}" for k, v in x.attrs if k != "shape")
    return f"{x.kind}:{x.fn}" + (f"({attrs})" if attrs else "")


def cost_of(ctx: CostContext, layer: Any, ops: int, row: bool) -> Cost:
    """The chosen placement's estimate, with the other placement's time beside it."""
    board: Board = ctx.board
    work = layer_work(ctx.plan, layer, ops, row)
    block = (ctx.plan.block.chains, ctx.plan.block.cascade)
    kind = f"{layer.kind}:{layer.fn}@{layer.placement}"
    streamed = aie_plio_bytes(ctx.plan, layer) if layer.placement == "aie" else None
    est = estimate_nonlinear(
        board,
        layer.name,
        work,
        layer.placement,
        block=block,
        kind=kind,
        plio_bytes=streamed[:2] if streamed else None,
    )
    penalty = port_penalty_in_plan(ctx.plan, board, layer)
    _, options = choose_placement(
        board, layer.name, work, block=block, kind=layer.kind, aie_extra_s=penalty
    )
    extra = {
        "placement": layer.placement,
        "cycles": est.detail["cycles"],
        "cycles_clock": est.detail["clock"],
        "ops_per_element": work.ops,
        "elements_per_s": work.elements / est.time_s if est.time_s else None,
        "placement_options_s": {
            k: e.time_s + (penalty if k == "aie" else 0.0) for k, e in sorted(options.items())
        },
        "aie_port_padding_s": penalty,
        "pl_unit": est.resources.pl_block or None,
        "nonlinear_pl": {
            "lut": est.resources.pl.lut,
            "ff": est.resources.pl.ff,
            "dsp": est.resources.pl.dsp,
            "bram": est.resources.pl.bram,
        }
        if layer.placement == "pl"
        else None,
    }
    if streamed:
        extra["plio_padding_bytes"] = streamed[2]
    return Cost(est, extra)


def aie_plio_bytes(plan: Plan, layer: Any) -> tuple[int, int, int] | None:
    """(in, out, padding) bytes an AIE-placed layer with a kernel streams over the block's A
    and C PLIOs in the compiled graph: whole buffer ports every iteration
    (:func:`codesign.aie.emit.port_bytes`; the layout of :mod:`codesign.aie.nonlinear`), and how
    many of them are padding beyond its rows. None when the layer has no kernel on the block."""
    from codesign.aie import nonlinear as aie_nl
    from codesign.aie.emit import gemm_layers, port_bytes, shared_graph_context

    if not aie_nl.has_kernel(layer) or not gemm_layers(plan):
        return None
    index = plan.layers.index(layer)
    g = shared_graph_context(plan) or {"nl_layers": []}
    ctx = next((c for c in g["nl_layers"] if c["index"] == index), None)
    if ctx is None:
        return None
    ports = port_bytes(plan)
    C, L, T = ctx["chains"], ctx["cascade"], ctx["iterations"]
    b_in, b_out = T * L * ports.a, T * C * ports.c
    rows_in = T * L * C * ctx["q"] * ctx["n"] * aie_nl.F32
    rows_out = T * C * L * ctx["q"] * ctx["n_out"] * aie_nl.F32
    return b_in, b_out, b_in - rows_in + b_out - rows_out


def cost(ctx: CostContext, stage: list[NonlinearLayer]) -> Cost:
    (layer,) = stage
    return cost_of(ctx, layer, table.ELEMENTWISE[layer.fn].ops, row=False)


#: float64/float32 temporaries a nonlinear layer makes per output element (clip, n, r, the
#: Horner steps, selects)
TEMPS = 12


def memory(plan: Plan, layer: Layer) -> LayerMemory:
    """A dozen temporaries of the largest operand while the function runs."""
    n = max(math.prod(plan.value_spec(t).shape) for t in (*layer.inputs, *layer.outputs) if t)
    return LayerMemory(transient=TEMPS * n * 8)


def describe(plan: Plan, layers: list[Any], ops: dict[str, int], row: bool) -> bytes:
    """The JSON description of the layers (function, attributes, placement, modelled work)."""
    items = []
    for layer in layers:
        w = layer_work(plan, layer, ops[layer.fn], row)
        items.append(
            {
                "name": layer.name,
                "fn": layer.fn,
                "attrs": {k: v for k, v in layer.attrs},
                "placement": layer.placement,
                "inputs": list(layer.inputs),
                "outputs": list(layer.outputs),
                "elements": w.elements,
                "ops_per_element": w.ops,
                "row": w.row,
                "arithmetic": "codesign.sim.numerics.nonlinear",
            }
        )
    return (json.dumps({"layers": items}, indent=2, sort_keys=True, default=list) + "\n").encode()


def pl_files(
    plan: Plan, layers: list[Any], context: Callable[[Plan, int, Any], dict | None], template: str
) -> list[tuple[str, bytes]]:
    """The PL units of the layers placed on the PL (``hls/<ident>.h`` from ``template`` with
    ``context(plan, index, layer)``; None: no unit, the sequencer marks the layer missing) and,
    when there is one, ``hls/nl_math.h`` (the arithmetic they include). Layers placed on the
    AIE get nothing here: their kernels are the AIE side's."""
    from codesign.hls import pl
    from codesign.hls.nl_math import NL_MATH_H, nl_math_source

    out = []
    for i, layer in pl.indexed(plan, [x for x in layers if x.placement == "pl"]):
        ctx = context(plan, i, layer)
        if ctx is not None:
            out.append((f"hls/{ctx['p']}.h", pl.render(template, **ctx)))
    if out:
        out.append((f"hls/{NL_MATH_H}", nl_math_source()))
    return out


def unit_context(plan: Plan, index: int, layer: NonlinearLayer) -> dict:
    """What ``nonlinear_layer.h.j2`` needs: the output's dims, each input's arena operand and
    broadcast strides, the output operand, GELU's form."""
    from codesign.hls import pl

    where = f"layer {layer.name!r}"
    out = pl.shape_of(plan, layer.outputs[0])
    inputs = []
    for k, name in enumerate(n for n in layer.inputs if n):
        x = pl.operand(plan, name, where)
        v = f"x{k}" if x["float"] else f"static_cast<std::int64_t>(x{k})"
        x.update(
            k=k,
            strides=pl.broadcast_strides(out, pl.shape_of(plan, name)) or [0],
            as_double=f"static_cast<double>({v})",
            as_float=f"x{k}" if x["float"] else f"static_cast<float>(static_cast<double>({v}))",
        )
        inputs.append(x)
    return {
        "p": pl.ident(index, layer.name),
        "name": layer.name,
        "fn": layer.fn,
        "approximate": str(dict(layer.attrs).get("approximate", "none")),
        "dims": list(out) or [1],
        "count": math.prod(out),
        "inputs": inputs,
        "output": pl.operand(plan, layer.outputs[0], where),
    }


def emit(plan: Plan, layers: list[NonlinearLayer]) -> Emitted:
    """``kinds/nonlinear.json`` (what each layer computes and where it runs), the PL unit of
    each layer placed on the PL (``hls/<ident>.h``, :func:`pl_files`) and, for the unary float
    layers placed on the AIE block, their AIE kernels and PL sequencer steps
    (:mod:`codesign.hls.aie_nonlinear`)."""
    from codesign.hls.aie_nonlinear import emit as emit_on_block

    ops = {k: f.ops for k, f in table.ELEMENTWISE.items()}
    files = [("kinds/nonlinear.json", describe(plan, layers, ops, False))]
    files += pl_files(plan, layers, unit_context, "nonlinear_layer.h.j2")
    return Emitted(files=tuple(files) + emit_on_block(plan, "nonlinear"))


KIND = register(
    OpKind(
        name="nonlinear",
        op=Nonlinear,
        layer=NonlinearLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,
    )
)
