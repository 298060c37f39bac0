"""The reshape kind: a view (Reshape, Flatten) -- the same bytes with a new static shape.

KernelGraph op :class:`~codesign.ir.graph.Reshape`, plan layer :class:`~codesign.ir.plan.ReshapeLayer`.
It costs nothing in the model (left out of the report) and needs nothing in the build.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from codesign.ir.graph import Reshape
from codesign.ir.plan import Plan, ReshapeLayer
from codesign.kinds.registry import LayerMemory, OpKind, no_emission, no_output_scale, register

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker


def plan(ctx: PlanContext, op: Reshape) -> ReshapeLayer:
    return ReshapeLayer(op.name, op.inputs, op.outputs, shape=op.shape)


def execute(sim: Simulator, layer: ReshapeLayer, args: list) -> tuple[np.ndarray]:
    return (args[0].reshape(layer.shape),)


def check(ck: PlanChecker, r: ReshapeLayer) -> None:
    """One input, one output, the same element count, the output's declared shape."""
    ck.count(r, 1, 1)
    x, out = ck.shapes[r.inputs[0]], ck.shapes[r.outputs[0]]
    if math.prod(x) != math.prod(r.shape) or tuple(r.shape) != out:
        ck.fail(f"reshape of {list(x)} to {list(r.shape)} must keep the element count")


def cost(ctx: CostContext, stage: list[ReshapeLayer]) -> None:
    """A view is free: no stage in the report."""
    return None


#: numpy's reshape of a contiguous array is a view; counted like a vector layer's temporaries
#: (as before the registry) to stay an upper-bound-minded estimate.
_TEMPS = 6


def memory(plan: Plan, layer: ReshapeLayer) -> LayerMemory:
    out = sum(math.prod(plan.tensor(o).shape) for o in layer.outputs if o)
    return LayerMemory(transient=_TEMPS * out * 8)


KIND = register(
    OpKind(
        name="reshape",
        op=Reshape,
        layer=ReshapeLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=no_emission,
        output_scale=no_output_scale,
    )
)
