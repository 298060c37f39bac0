"""The rownorm kind: functions over the last axis (softmax, LayerNorm, RMSNorm, ReduceMean),
placed on a PL vector unit or the AIE-ML vector cores.

KernelGraph op :class:`~codesign.ir.nonlinear.RowNorm`, plan layer
:class:`~codesign.ir.nonlinear.RowNormLayer`; the table is
:data:`codesign.sim.nonlinear.ROWWISE`, the arithmetic :mod:`codesign.sim.numerics.nonlinear`
(max-subtracted softmax, wide row sums rounded once to fp32, rsqrt by Newton steps). Inputs:
``(x[, gamma[, beta]])``; gamma and beta are constants of the last axis' length. Placement,
cost and emission as in :mod:`codesign.kinds.nonlinear` (``kinds/rownorm.json``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from codesign.ir.nonlinear import RowNorm, RowNormLayer
from codesign.ir.plan import Plan
from codesign.kinds.nonlinear import (
    cast_outputs,
    check_common,
    cost_of,
    describe,
    memory,
    pl_files,
    place,
)
from codesign.kinds.registry import Cost, Emitted, OpKind, no_output_scale, register
from codesign.sim import nonlinear as table

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker


def plan(ctx: PlanContext, op: RowNorm) -> RowNormLayer:
    """The layer as the op, placed by the cost model; gamma/beta become plan constants."""
    for name in op.inputs:
        if name and ctx.kg.is_const(name):
            ctx.constant(name)
    placement = place(ctx, op, table.ROWWISE[op.fn].ops, row=True)
    return RowNormLayer(
        op.name, op.inputs, op.outputs, fn=op.fn, attrs=op.attrs, placement=placement
    )


def execute(sim: Simulator, layer: RowNormLayer, args: list) -> tuple[np.ndarray, ...]:
    y = table.apply(table.ROWWISE, layer.fn, [x for x in args if x is not None], dict(layer.attrs))
    return cast_outputs(sim, layer, (y,))


def check(ck: PlanChecker, r: RowNormLayer) -> None:
    """A known function, float32 x, gamma/beta constants of the row length, the output shape
    (x's, or x's with the last axis 1 for reducemean), a positive finite epsilon."""
    ins = check_common(ck, r, table.ROWWISE)
    x = ck.shapes[ins[0]]
    if not x:
        ck.fail(f"{r.fn} needs at least one axis")
    want = (*x[:-1], 1) if r.fn == "reducemean" else x
    if ck.shapes[r.outputs[0]] != want:
        ck.fail(
            f"{r.fn} of {list(x)} must give shape {list(want)}, not {list(ck.shapes[r.outputs[0]])}"
        )
    for name in ins[1:]:
        if name not in ck.plan.constants:
            ck.fail(f"{r.fn} parameter {name!r} must be a constant")
        if math.prod(ck.shapes[name]) != x[-1] or ck.shapes[name][-1:] != (x[-1],):
            ck.fail(f"{r.fn} parameter {name!r} must hold {x[-1]} values along the last axis")
    if r.fn in ("layernorm", "rmsnorm"):
        eps = dict(r.attrs).get("epsilon")
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not (0 <= eps < math.inf):
            ck.fail(f"{r.fn} needs an epsilon, a finite number >= 0, not {eps!r}")


def cost(ctx: CostContext, stage: list[RowNormLayer]) -> Cost:
    (layer,) = stage
    return cost_of(ctx, layer, table.ROWWISE[layer.fn].ops, row=True)


def unit_context(plan: Plan, index: int, layer: RowNormLayer) -> dict | None:
    """What ``rownorm_layer.h.j2`` needs: the rows, the row length, the input, output and
    gamma/beta operands, epsilon as an exact fp32 literal. None for rows of no element (no
    unit: the sequencer marks the layer missing)."""
    from codesign.hls import pl
    from codesign.hls.nl_math import epsilon_literal

    where = f"layer {layer.name!r}"
    x = pl.shape_of(plan, layer.inputs[0])
    n = x[-1]
    if n == 0:
        return None
    params = []
    for var, name in zip(("gamma", "beta"), layer.inputs[1:], strict=False):
        if name:
            params.append({**pl.operand(plan, name, where), "var": var})
    return {
        "p": pl.ident(index, layer.name),
        "name": layer.name,
        "fn": layer.fn,
        "n": n,
        "rows": math.prod(x[:-1]),
        "width": 1 if layer.fn == "reducemean" else n,
        "x": pl.operand(plan, layer.inputs[0], where),
        "y": pl.operand(plan, layer.outputs[0], where),
        "params": params,
        "has_gamma": any(g["var"] == "gamma" for g in params),
        "has_beta": any(g["var"] == "beta" for g in params),
        "eps": epsilon_literal(layer.attrs),
    }


def emit(plan: Plan, layers: list[RowNormLayer]) -> Emitted:
    """``kinds/rownorm.json`` (what each layer computes and where it runs), the PL unit of each
    layer placed on the PL (``hls/<ident>.h``, :func:`codesign.kinds.nonlinear.pl_files`) and,
    for the layers placed on the AIE block, their AIE kernels and PL sequencer steps
    (:mod:`codesign.hls.aie_nonlinear`)."""
    from codesign.hls.aie_nonlinear import emit as emit_on_block

    ops = {k: f.ops for k, f in table.ROWWISE.items()}
    files = [("kinds/rownorm.json", describe(plan, layers, ops, True))]
    files += pl_files(plan, layers, unit_context, "rownorm_layer.h.j2")
    return Emitted(files=tuple(files) + emit_on_block(plan, "rownorm"))


KIND = register(
    OpKind(
        name="rownorm",
        op=RowNorm,
        layer=RowNormLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,
    )
)
