"""The vector kind: element-wise ops on the PL vector path (add, sub, mul, relu, cast, quantize,
dequantize, dynamic_quantize; the one table is :data:`codesign.sim.vector.FUNCTIONS`).

KernelGraph op :class:`~codesign.ir.graph.Vector`, plan layer :class:`~codesign.ir.plan.VectorLayer`.
A chain of vector layers is modelled as one PL stream stage (``fuses``). Each layer's PL vector
unit is emitted as Vitis HLS C++ (:func:`emit`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from codesign.cost import estimate_stream_layer
from codesign.ir.graph import TensorType, Vector
from codesign.ir.plan import Plan, VectorLayer
from codesign.kinds.registry import Cost, Emitted, LayerMemory, OpKind, register
from codesign.sim import numerics, vector

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker


def plan(ctx: PlanContext, op: Vector) -> VectorLayer:
    """The layer as the op; constant inputs become plan constants (packed once)."""
    for name in op.inputs:
        if name and ctx.kg.is_const(name):
            ctx.constant(name)
    return VectorLayer(op.name, op.inputs, op.outputs, fn=op.fn, attrs=op.attrs)


def execute(sim: Simulator, layer: VectorLayer, args: list) -> tuple[np.ndarray, ...]:
    return vector.apply(layer.fn, [x for x in args if x is not None], dict(layer.attrs))


def check(ck: PlanChecker, v: VectorLayer) -> None:
    """A known function with its number of inputs and outputs, broadcastable shapes, and valid
    quantisation and cast attributes."""
    fn = vector.FUNCTIONS.get(v.fn)
    if fn is None:
        ck.fail(f"fn must be one of {', '.join(sorted(vector.FUNCTIONS))}, not {v.fn!r}")
    ins = [name for name in v.inputs if name]
    ck.count(v, len(v.inputs), fn.outputs)
    if len(ins) != fn.arity:
        ck.fail(f"{v.fn} takes {fn.arity} inputs, not {len(ins)}")
    attrs = dict(v.attrs)
    x, out = ck.shapes[ins[0]], ck.shapes[v.outputs[0]]
    if fn.broadcasts:
        try:
            ok = np.broadcast_shapes(*(ck.shapes[n] for n in ins), out) == out
        except ValueError:
            ok = False
        if not ok:
            ck.fail(f"input shapes must broadcast to the output shape {list(out)}")
    elif v.fn != "dynamic_quantize" and x != out:
        ck.fail(f"{v.fn} must keep the shape {list(x)}, not {list(out)}")
    if v.fn in ("quantize", "dequantize"):
        _quant_params(ck, v, ins, attrs, x)
    if v.fn == "cast":
        ck.dtype(str(attrs.get("to")), "cast 'to'")
        if attrs.get("to") != ck.dtypes[v.outputs[0]]:
            ck.fail("cast 'to' must be the output tensor's dtype")


def _quant_params(ck: PlanChecker, v: VectorLayer, ins: list[str], attrs: dict, x: tuple) -> None:
    axis = attrs.get("axis")
    if axis is not None and (
        isinstance(axis, bool) or not isinstance(axis, int) or not -len(x) <= axis < len(x)
    ):
        ck.fail(f"axis must be null or lie in [{-len(x)}, {len(x)}), not {axis!r}")
    for name in ins[1:]:
        shape = ck.shapes[name]
        per_axis = axis is not None and shape == (x[axis],)
        if math.prod(shape) != 1 and not per_axis:
            ck.fail(f"{name!r} must be a single value or one per element of the axis")
    if v.fn == "quantize":
        dtype = attrs.get("dtype")
        if dtype not in numerics.INT_DTYPES or dtype != ck.dtypes[v.outputs[0]]:
            ck.fail(f"quantize dtype must be the output's integer dtype, not {dtype!r}")


def _nbytes(plan: Plan, name: str) -> int:
    t = plan.tensor(name)
    return TensorType(tuple(t.shape), t.dtype).nbytes


def cost(ctx: CostContext, stage: list[VectorLayer]) -> Cost:
    """One PL stream stage: reads the chain's external inputs, writes its last outputs."""
    plan = ctx.plan
    internal = {t for layer in stage[:-1] for t in layer.outputs}
    inputs = {
        t
        for layer in stage
        for t in layer.inputs
        if t and t not in plan.constants and t not in internal
    }
    bytes_in = sum(_nbytes(plan, t) for t in sorted(inputs))
    bytes_out = sum(_nbytes(plan, t) for t in stage[-1].outputs)
    name = stage[0].name if len(stage) == 1 else f"{stage[0].name}..{stage[-1].name}"
    kind = "vector:" + "+".join(layer.fn for layer in stage)
    return Cost(estimate_stream_layer(ctx.board, name, bytes_in, bytes_out, kind=kind))


#: 8-byte temporaries a vector layer makes per output element (x, x/s, rint, clip...).
VECTOR_TEMPS = 6


def memory(plan: Plan, layer: VectorLayer) -> LayerMemory:
    """A few float64 copies of the output while the function runs."""
    out = sum(math.prod(plan.tensor(o).shape) for o in layer.outputs if o)
    return LayerMemory(transient=VECTOR_TEMPS * out * 8)


def output_scale(
    plan: Plan, layer: VectorLayer, output: str, constants: dict[str, np.ndarray]
) -> float | None:
    """A dequantisation of an 8/16-bit integer tensor by one per-tensor scale: that scale."""
    if layer.fn != "dequantize":
        return None
    scale = constants.get(layer.inputs[1])
    src = plan.tensor(layer.inputs[0]).dtype
    if scale is not None and scale.size == 1 and src in ("int8", "uint8", "int16", "uint16"):
        return float(scale.reshape(-1)[0])
    return None


def emit(plan: Plan, layers: list[VectorLayer]) -> Emitted:
    """The PL vector unit of each layer (``hls/l<i>_<name>.h``, Vitis HLS C++ with the
    arithmetic of :mod:`codesign.sim.numerics`; see :mod:`codesign.hls.pl`)."""
    from codesign.hls import pl

    return Emitted(files=tuple(pl.layer_files(plan, VectorLayer)))


KIND = register(
    OpKind(
        name="vector",
        op=Vector,
        layer=VectorLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=output_scale,
        fuses=True,
    )
)
