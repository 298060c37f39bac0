"""Whole-model execution: one graph run per inference, as a deployed model runs.

A compiled model runs as one AIE graph and one PL sequencer that walk every layer on the block,
so the host launches once per inference (once more after each Host partition that layers
follow: the host runs the partition between two launches). The per-GEMM estimates of :mod:`codesign.cost.temporal`
model one graph run per GEMM (Tempus's host flow, on which the model is calibrated); this module
regroups their terms by how often they are paid:

- **per launch**: the fixed launch (kernel launch, graph run, DMA start and completion:
  ``perf.launch_s + perf.run_overhead_s``), paid once per launch (``launches``);
- **per layer**: the reconfiguration of the block through run-time parameters
  (``perf.layer_reconfig_s``, a labelled assumption in the board file), and the pipeline fill and
  drain (the overlapped stages once); a layer's weight streaming is listed per layer in bytes but
  timed inside its tile stages (not added twice);
- **per tile**: ``iterations`` x the slowest overlapped stage (compute, cascade, PLIO, DDR).

Layers run one after another (each reads the previous one's output from the DDR arena, so their
fills do not overlap). :func:`whole_model` gives the latency of one inference and, beside it, the
same layers each launched on their own (``per_launch_time_s``: "Tempus's host flow: one launch per
GEMM"). Every figure is modelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from codesign.boards import Board
from codesign.cost.layers import LayerEstimate
from codesign.cost.params import perf_params, required
from codesign.cost.temporal import MODELLED
from codesign.cost.workload import DTYPE_BYTES
from codesign.ir.plan import Plan

#: How the report names the comparison figure.
PER_LAUNCH_LABEL = "Tempus's host flow: one launch per GEMM"
#: Power components paid while the launch runs (the array and the data movers idle).
_IDLE_COMPONENTS = ("static", "ps", "platform_other")


@dataclass(frozen=True)
class StageRun:
    """One hardware stage inside the inference's graph run (seconds, modelled).

    ``time_s`` = ``reconfig_s`` + ``fill_s`` + ``tiles`` x ``tile_s``; ``per_launch_s`` is the
    stage's time as its own graph run (its launch included when it pays one)."""

    name: str
    unit: str
    tiles: int
    tile_s: float
    fill_s: float
    reconfig_s: float
    weight_bytes: int
    per_launch_s: float
    launch_s: float

    @property
    def steady_s(self) -> float:
        return self.tiles * self.tile_s

    @property
    def time_s(self) -> float:
        return self.reconfig_s + self.fill_s + self.steady_s


@dataclass(frozen=True)
class WholeModelEstimate:
    """One inference as one graph run: the launch once, then every stage in order.

    ``views``: the stages' :class:`LayerEstimate` with their whole-model times (no launch of
    their own; the reconfiguration in ``critical_path`` and ``breakdown``)."""

    launch_s: float
    stages: tuple[StageRun, ...]
    views: tuple[LayerEstimate, ...]
    launch_energy_j: float
    reconfig_source: str
    launches: int = 1
    label: str = MODELLED

    @property
    def time_s(self) -> float:
        return self.launches * self.launch_s + sum(s.time_s for s in self.stages)

    @property
    def per_launch_time_s(self) -> float:
        """The same stages, each GEMM on its own graph run (Tempus's host flow); a model that
        launches nothing on its own still pays one launch."""
        total = sum(s.per_launch_s for s in self.stages)
        if not any(s.launch_s > 0 for s in self.stages):
            total += self.launch_s
        return total

    @property
    def speedup(self) -> float:
        """Modelled gain of one launch per inference over one launch per GEMM."""
        return self.per_launch_time_s / self.time_s if self.time_s else 1.0


def reconfig_s(board: Board) -> float:
    """Seconds one layer's reconfiguration takes (``perf.layer_reconfig_s``; BoardError when the
    board file lacks it)."""
    return float(required(board, "perf", "layer_reconfig_s"))


def _weight_bytes(x: LayerEstimate) -> int:
    d = x.detail
    if x.unit != "aie" or d.get("dtype") not in DTYPE_BYTES or d.get("K") is None:
        return 0
    # sub-byte weights (int4: half a byte each) are packed, and round up to whole bytes
    return math.ceil(int(d["K"]) * int(d["N"]) * DTYPE_BYTES[d["dtype"]][1])


def stage_run(board: Board, x: LayerEstimate) -> StageRun:
    """How the per-launch estimate ``x`` runs inside the whole-model graph run."""
    cp = x.critical_path
    launch = cp.get("launch", 0.0)
    steady = cp.get("steady", x.time_s - launch - cp.get("fill", 0.0))
    tiles = int(x.detail.get("iterations") or 1) if x.unit == "aie" else 1
    return StageRun(
        name=x.name,
        unit=x.unit,
        tiles=tiles,
        tile_s=steady / tiles,
        fill_s=cp.get("fill", 0.0),
        reconfig_s=reconfig_s(board) if x.unit == "aie" else 0.0,
        weight_bytes=_weight_bytes(x),
        per_launch_s=x.time_s,
        launch_s=launch,
    )


def _view(x: LayerEstimate, s: StageRun) -> LayerEstimate:
    breakdown = dict(x.breakdown)
    breakdown["launch"] = 0.0
    breakdown["reconfig"] = s.reconfig_s
    return replace(
        x,
        time_s=s.time_s,
        breakdown=breakdown,
        critical_path={
            "launch": 0.0,
            "reconfig": s.reconfig_s,
            "fill": s.fill_s,
            "steady": s.steady_s,
        },
        bound=x.bound if x.bound != "launch" else _slowest(x),
    )


def _slowest(x: LayerEstimate) -> str:
    busy = {k: v for k, v in x.breakdown.items() if k != "launch"}
    return max(busy, key=lambda k: busy[k]) if busy else "launch"


def whole_model(
    board: Board, layers: Sequence[LayerEstimate], launches: int = 1
) -> WholeModelEstimate:
    """``layers`` (per-launch estimates, in order) run as ``launches`` graph runs per inference
    (one, plus one after each Host partition that layers follow:
    :func:`codesign.ir.plan.inference_steps`), each paying the fixed launch."""
    p = perf_params(board)
    stages = tuple(stage_run(board, x) for x in layers)
    views = tuple(_view(x, s) for x, s in zip(layers, stages, strict=True))
    idle = 0.0
    if layers:
        comps = max(layers, key=lambda x: x.power_w).power.components
        idle = sum(comps.get(k, 0.0) for k in _IDLE_COMPONENTS)
    return WholeModelEstimate(
        launch_s=p.fixed_overhead_s,
        stages=stages,
        views=views,
        launch_energy_j=idle * p.fixed_overhead_s,
        reconfig_source=board.source("perf.layer_reconfig_s"),
        launches=launches,
    )


@dataclass(frozen=True)
class GemmPeakShare:
    """How close a plan's weight GEMMs come to the block's peak (every figure modelled).

    ``ops`` counts 2*M*K*N over the plan's weight GEMMs; ``gemm_s`` is their modelled time on
    the block as the plan's execution record walks them (reconfiguration, fill and tiles; the
    per-inference launch excluded); ``peak_ops_s`` is the block's cores x the board's MACs per
    cycle for the GEMMs' dtype x 2 at the AIE clock."""

    gemms: int
    dtype: str
    ops: int
    gemm_s: float
    peak_ops_s: float

    @property
    def share(self) -> float:
        """Achieved fraction of the peak on the GEMMs alone."""
        return self.ops / self.gemm_s / self.peak_ops_s


def gemm_peak_share(plan: Plan, board: Board) -> GemmPeakShare | None:
    """The weight GEMMs' share of the block peak under ``plan``'s execution record, or None
    when the plan has no weight GEMM or no execution record. The GEMMs' dtype is the first
    GEMM's (the peak differs per dtype)."""
    gemms, ex = plan.gemms(), plan.execution
    if not gemms or ex is None:
        return None
    hz = ex.aie_clock_mhz * 1e6
    names = {g.name for g in gemms}
    runs = [r for r in ex.layers if r.layer in names]
    cycles = sum(r.reconfig_cycles + r.fill_cycles + r.tiles * r.tile_cycles for r in runs)
    ops = sum(2 * g.schedule.M * g.schedule.K * g.schedule.N for g in gemms)
    dtype = gemms[0].dtype
    peak = plan.block.cores * board.aie.macs_per_cycle[dtype] * 2 * hz
    return GemmPeakShare(len(gemms), dtype, ops, cycles / hz, peak)
