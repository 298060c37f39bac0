"""Calibration of the temporal model against Tempus, and the fit of its free parameters.

Two timing parameters are fitted, both physical and global (never per point): the achieved DDR
efficiency (fraction of the board's peak DDR bandwidth) and the run overhead beyond the published
0.21 ms launch (graph run, DMA start and completion). :func:`fit_tempus` finds them by minimising
the largest relative error over :data:`TEMPUS_POINTS`; the board file holds the result with a
"fitted to ..." source, and a test checks the board file still matches a fresh fit. The NoC power
per GB/s is fitted so the memory group matches Tempus's Vivado figure at the modelled traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from codesign.boards import Board
from codesign.cost.reference import (
    HOLDOUT_POINTS,
    TEMPUS_PL,
    TEMPUS_POINTS,
    TEMPUS_POWER,
    TimedPoint,
)
from codesign.cost.resources import PlUsage
from codesign.cost.temporal import GemmEstimate, estimate_temporal_gemm
from codesign.cost.workload import GemmWorkload, TemporalConfig


def tempus_setup(pt: TimedPoint) -> tuple[GemmWorkload, TemporalConfig]:
    """Tempus's configuration for a point: 2 chains x 8 cascade, DIM_A = min(DIM, M/2),
    DIM_B = min(DIM, N/2), DIM_AB = K/8, 128-bit PLIOs at 312.5 MHz, host-replicated streaming."""
    w = GemmWorkload(pt.M, pt.K, pt.N, pt.dtype)
    c = TemporalConfig(
        chains=2,
        cascade=8,
        tile_m=min(pt.dim, pt.M // 2),
        tile_k=pt.K // 8,
        tile_n=min(pt.dim, pt.N // 2),
        dataflow="tempus",
        pl_clock_mhz=312.5,
        plio_bits=128,
    )
    return w, c


TEMPUS_PL_USAGE = PlUsage(
    TEMPUS_PL.lut,
    TEMPUS_PL.ff,
    TEMPUS_PL.bram,
    TEMPUS_PL.uram,
    TEMPUS_PL.dsp,
    source="Tempus DMA (measured)",
)


@dataclass(frozen=True)
class CalibrationRow:
    """Model against a measurement. ``tolerance`` None: a hold-out, shown but not asserted."""

    name: str
    quantity: str
    measured: float
    modelled: float
    tolerance: float | None
    source: str
    bound: str = ""

    @property
    def error(self) -> float:
        return self.modelled / self.measured - 1.0

    @property
    def ok(self) -> bool | None:
        return None if self.tolerance is None else abs(self.error) <= self.tolerance


def _estimate(board: Board, pt: TimedPoint) -> GemmEstimate:
    w, c = tempus_setup(pt)
    return estimate_temporal_gemm(board, w, c, pl=TEMPUS_PL_USAGE)


def time_rows(board: Board, holdouts: bool = True) -> list[CalibrationRow]:
    """Time of every Tempus point (and the repeat measurements and hold-outs) as modelled."""
    pts = TEMPUS_POINTS + (HOLDOUT_POINTS if holdouts else ())
    rows = []
    for pt in pts:
        e = _estimate(board, pt)
        rows.append(
            CalibrationRow(
                pt.name,
                "time_ms",
                pt.time_s * 1e3,
                e.time_s * 1e3,
                pt.tolerance,
                pt.source,
                e.bound,
            )
        )
    return rows


#: The power reference is Vivado's vectorless estimate of the Tempus build, not a measurement.
_POWER = "tempus 1024^3 power (Vivado vectorless estimate, not measured)"


def power_rows(board: Board) -> list[CalibrationRow]:
    """Tempus 1024^3 power breakdown against the model (tolerances: the model's own check)."""
    pt = TEMPUS_POINTS[0]
    e = _estimate(board, pt)
    P = e.power
    ref = TEMPUS_POWER
    return [
        CalibrationRow(_POWER, "total_w", ref.total_w, P.total_w, 0.05, ref.source),
        CalibrationRow(_POWER, "aie_w", ref.aie_w, P.group("aie"), 0.05, ref.source),
        CalibrationRow(_POWER, "static_w", ref.static_w, P.group("static"), 0.05, ref.source),
        CalibrationRow(_POWER, "memory_w", ref.memory_w, P.group("memory"), 0.05, ref.source),
    ]


@dataclass(frozen=True)
class FitResult:
    ddr_efficiency: float
    run_overhead_s: float
    noc_w_per_gbs: float
    max_error: float


def _with(board: Board, section: str, **values: float) -> Board:
    extra = dict(board.extra)
    extra[section] = {**extra.get(section, {}), **values}
    return replace(board, extra=extra)


def _max_err(board: Board) -> float:
    return max(abs(r.error) for r in time_rows(board, holdouts=False))


def fit_tempus(board: Board) -> FitResult:
    """Fit DDR efficiency and run overhead (minimax relative error over the Tempus points) by a
    deterministic coarse-to-fine grid, then the NoC power slope."""
    best = (float("inf"), 0.0, 0.0)
    eff_lo, eff_hi, ov_lo, ov_hi = 0.30, 1.00, 0.0, 1.0e-3
    for _ in range(4):
        steps = 40
        for i in range(steps + 1):
            eff = eff_lo + (eff_hi - eff_lo) * i / steps
            for j in range(steps + 1):
                ov = ov_lo + (ov_hi - ov_lo) * j / steps
                b = _with(board, "perf", ddr_efficiency=eff, run_overhead_s=ov)
                err = _max_err(b)
                if err < best[0]:
                    best = (err, eff, ov)
        _, eff, ov = best
        de, do = (eff_hi - eff_lo) / 8, (ov_hi - ov_lo) / 8
        eff_lo, eff_hi, ov_lo, ov_hi = (
            max(0.05, eff - de),
            min(1.0, eff + de),
            max(0.0, ov - do),
            ov + do,
        )
    err, eff, ov = best
    eff, ov = round(eff, 4), round(ov, 7)
    b = _with(board, "perf", ddr_efficiency=eff, run_overhead_s=ov)
    b = _with(b, "power", noc_w_per_gbs=0.0)
    e = _estimate(b, TEMPUS_POINTS[0])
    # with the NoC slope at zero the memory group is BRAM + DDRMC + XRAM; the rest is NoC traffic
    noc = (TEMPUS_POWER.memory_w - e.power.group("memory")) / e.ddr_gbs
    return FitResult(eff, ov, round(noc, 4), _max_err(b))
