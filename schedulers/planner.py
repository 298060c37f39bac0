"""Map a hardware KernelGraph onto the board: one plan layer per op, data packed in memory.

:func:`plan` is pure: it writes no file. Each op's kind (:mod:`codesign.kinds`) plans its layer
and packs the data it needs through the context's :class:`~codesign.ir.data.DataPacker`; the Plan
holds the packed bytes by sha256 (:attr:`~codesign.ir.plan.Plan.data`). The modelled resources
are checked against the board before the plan is returned (FitError otherwise).
"""

from __future__ import annotations

from dataclasses import replace

from codesign.boards import Board
from codesign.cost.variants import MAX_VARIANTS
from codesign.ir.data import DataPacker
from codesign.ir.graph import KernelGraph
from codesign.ir.plan import Block, DataFile, Plan, TensorSpec
from codesign.kinds import registry
from codesign.schedulers import tempus


class PlanContext:
    """What a kind's planner needs: the graph, the board, the block and the data packer."""

    def __init__(
        self,
        kg: KernelGraph,
        board: Board,
        block: Block,
        packer: DataPacker,
        solver_time_limit: float = tempus.SOLVER_TIME_LIMIT,
        max_variants: int = MAX_VARIANTS,
    ) -> None:
        self.kg, self.board, self.block, self.packer = kg, board, block, packer
        self.solver_time_limit = solver_time_limit
        self.max_variants = max_variants
        self.constants: dict[str, DataFile] = {}
        #: what a kind decides once for the whole graph (e.g. the GEMM kernel tile variants),
        #: by a key the kind owns
        self.state: dict[str, object] = {}

    def constant(self, name: str) -> DataFile:
        """The DataFile of a graph constant read by a layer as an input (packed once)."""
        if name not in self.constants:
            v = self.kg.const(name)
            self.constants[name] = self.packer.pack(name, v, self.kg.types[name].dtype)
        return self.constants[name]


def plan(
    kg: KernelGraph,
    board: Board,
    block: Block,
    model: str = "",
    solver_time_limit: float = tempus.SOLVER_TIME_LIMIT,
    check_fit: bool = True,
    max_variants: int = MAX_VARIANTS,
) -> Plan:
    """Schedule every op of the hardware KernelGraph ``kg`` on ``board`` with ``block``.

    ``solver_time_limit`` is the CP-SAT limit per GEMM tile search (see
    :func:`codesign.cost.tiles.search_tile`). With ``check_fit`` the plan's modelled
    resources (without synthesis figures of the PL blocks, which the build adds later) must fit
    the board, or :class:`~codesign.errors.FitError` says what overflows. ``max_variants``: the
    largest number of GEMM kernel tile variants per dtype the one compiled graph holds
    (:mod:`codesign.cost.variants`). The plan's ``execution`` records how the layers run in one
    graph run per inference, from the cost model (:func:`codesign.report.plan_report.execution_record`).
    """
    from codesign.report.plan_report import execution_record

    ctx = PlanContext(kg, board, block, DataPacker(), solver_time_limit, max_variants)
    layers = tuple(registry.planner(op)(ctx, op) for op in kg.ops)
    for op in kg.ops:  # constants any layer reads as an input (a GEMM's A included)
        for name in op.inputs:
            if name and kg.is_const(name):
                ctx.constant(name)

    def spec(name: str) -> TensorSpec:
        t = kg.types[name]
        return TensorSpec(name, t.shape, t.dtype)

    produced = [o for op in kg.ops for o in op.outputs]
    result = Plan(
        board=board.name,
        block=block,
        inputs=tuple(spec(n) for n in kg.inputs),
        outputs=tuple(spec(n) for n in kg.outputs),
        tensors=tuple(spec(n) for n in dict.fromkeys([*kg.inputs, *produced])),
        constants=dict(sorted(ctx.constants.items())),
        layers=layers,
        model=model,
        data=ctx.packer.blobs,
    )
    if check_fit:
        from codesign.report.plan_report import check_fit as require_fit

        require_fit(result, board)  # FitError naming what overflows, as the report says it
    return replace(result, execution=execution_record(result, board, max_variants))


__all__ = ["PlanContext", "plan"]
