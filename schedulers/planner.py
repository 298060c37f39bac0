"""Map a hardware KernelGraph onto the board: one plan layer per op, weights packed as streamed.

Each op kind has a planner function in :data:`PLANNERS`; a later room (recurrent kernels, MoE,
host fallback) adds its own entry rather than changing this driver.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from codesign.boards import Board
from codesign.codegen.datafiles import DataWriter
from codesign.errors import FitError
from codesign.ir.graph import Gemm, KernelGraph, Op, Reshape, Vector
from codesign.ir.layouts import B_LAYOUT, pack_b
from codesign.ir.plan import (
    Block,
    DataFile,
    GemmLayer,
    Layer,
    Plan,
    RequantSpec,
    ReshapeLayer,
    TensorSpec,
    VectorLayer,
)
from codesign.report import progress
from codesign.schedulers import tempus


class PlanContext:
    """What a planner function needs: the graph, the board, the block and the data writer."""

    def __init__(
        self,
        kg: KernelGraph,
        board: Board,
        block: Block,
        writer: DataWriter,
        solver_time_limit: float = tempus.SOLVER_TIME_LIMIT,
    ) -> None:
        self.kg, self.board, self.block, self.writer = kg, board, block, writer
        self.solver_time_limit = solver_time_limit
        self.constants: dict[str, DataFile] = {}

    def constant(self, name: str) -> DataFile:
        """The DataFile of a graph constant read by a vector layer (written once)."""
        if name not in self.constants:
            v = self.kg.const(name)
            self.constants[name] = self.writer.write(name, v, self.kg.types[name].dtype)
        return self.constants[name]


def _plan_gemm(ctx: PlanContext, op: Gemm) -> Layer:
    kg = ctx.kg
    w = kg.const(op.weight)
    K, N = w.shape
    a_shape = kg.types[op.inputs[0]].shape
    M = int(np.prod(a_shape[:-1], dtype=np.int64)) if len(a_shape) > 1 else 1
    progress.stage(f"solving the tiling of {op.name!r} (GEMM {M}x{K}x{N} {op.dtype})")
    try:
        sched = tempus.schedule_gemm(
            ctx.board, M, K, N, op.dtype, ctx.block, time_limit_s=ctx.solver_time_limit
        )
        sched = tempus.choose_dataflow(ctx.board, sched)
    except FitError as e:
        raise FitError(f"node {op.name!r} (GEMM {M}x{K}x{N} {op.dtype}): {e}") from None
    wdtype = "bf16" if op.dtype == "bf16" else kg.types[op.weight].dtype
    weight = ctx.writer.write(
        f"{op.name}.B", pack_b(w, sched), wdtype, layout=B_LAYOUT, shape=(K, N)
    )

    def vec(name: str | None) -> DataFile | None:
        if name is None:
            return None
        return ctx.writer.write(
            f"{op.name}.{name.rsplit('/', 1)[-1]}", kg.const(name), kg.types[name].dtype
        )

    requant = None
    if op.requant is not None:
        r = op.requant
        requant = RequantSpec(
            multiplier=vec(r.multiplier),
            shift=vec(r.shift),
            zero_point=r.zero_point,
            dtype=r.dtype,
            rounding=r.rounding,
        )
    return GemmLayer(
        name=op.name,
        inputs=op.inputs,
        outputs=op.outputs,
        dtype=op.dtype,
        schedule=sched,
        weight=weight,
        bias=vec(op.bias),
        colsum=vec(op.colsum),
        acc_shift=op.acc_shift,
        relu=op.relu,
        requant=requant,
    )


def _plan_vector(ctx: PlanContext, op: Vector) -> Layer:
    for name in op.inputs:
        if name and ctx.kg.is_const(name):
            ctx.constant(name)
    return VectorLayer(op.name, op.inputs, op.outputs, fn=op.fn, attrs=op.attrs)


def _plan_reshape(ctx: PlanContext, op: Reshape) -> Layer:
    return ReshapeLayer(op.name, op.inputs, op.outputs, shape=op.shape)


PLANNERS: dict[type[Op], Callable[[PlanContext, Op], Layer]] = {
    Gemm: _plan_gemm,
    Vector: _plan_vector,
    Reshape: _plan_reshape,
}


def plan_graph(
    kg: KernelGraph,
    board: Board,
    block: Block,
    writer: DataWriter,
    model: str = "",
    solver_time_limit: float = tempus.SOLVER_TIME_LIMIT,
) -> Plan:
    """Schedule every op of the hardware KernelGraph ``kg``; write its data through ``writer``.

    ``solver_time_limit`` is the CP-SAT limit per GEMM tile (see
    :func:`codesign.solvers.tiling.solve_tile`).
    """
    ctx = PlanContext(kg, board, block, writer, solver_time_limit)
    layers = tuple(PLANNERS[type(op)](ctx, op) for op in kg.ops)
    for op in kg.ops:  # constants any layer reads as an input (a GEMM's A included)
        for name in op.inputs:
            if name and kg.is_const(name):
                ctx.constant(name)

    def spec(name: str) -> TensorSpec:
        t = kg.types[name]
        return TensorSpec(name, t.shape, t.dtype)

    produced = [o for op in kg.ops for o in op.outputs]
    return Plan(
        board=board.name,
        block=block,
        inputs=tuple(spec(n) for n in kg.inputs),
        outputs=tuple(spec(n) for n in kg.outputs),
        tensors=tuple(spec(n) for n in dict.fromkeys([*kg.inputs, *produced])),
        constants=dict(sorted(ctx.constants.items())),
        layers=layers,
        model=model,
    )
