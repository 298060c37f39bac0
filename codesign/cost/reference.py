"""Published measurements the model is calibrated and checked against, with their sources.

These are figures of other people's designs (not hardware constants, which live in the board
files). Every entry names where it was published.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimedPoint:
    """A measured GEMM run of a temporal design."""

    name: str
    M: int
    K: int
    N: int
    dtype: str
    dim: int
    time_s: float
    tolerance: float | None
    source: str

    @property
    def gops(self) -> float:
        return 2 * self.M * self.K * self.N / self.time_s / 1e9


_TEMPUS = (
    "Tempus on VE2302, 2x8 int16, PL 312.5 MHz, single run (REFERENCES.md s3, arXiv 2605.00536)"
)
_SQUARE = "older Tempus square_GEMM design, '~' figures (mgrailoo/TEMPUS square_GEMM/README.md)"

#: Calibration points: the model must reproduce these within ``tolerance`` (asserted by tests).
TEMPUS_POINTS: tuple[TimedPoint, ...] = (
    TimedPoint("tempus 1024^3", 1024, 1024, 1024, "int16", 64, 3.537e-3, 0.10, _TEMPUS),
    TimedPoint("tempus 512^3", 512, 512, 512, "int16", 64, 0.792e-3, 0.15, _TEMPUS),
    TimedPoint("tempus 768^3", 768, 768, 768, "int16", 64, 1.637e-3, 0.15, _TEMPUS),
)

#: Points printed by bench/calibration.py, never fitted, never asserted. Their DIM is the one of
#: the matching mgrailoo/TEMPUS square_GEMM/Evaluations build (S512-D64, S1024-D64,
#: S1024-D32-int32, S256-D128). The 1024^3 and 512^3 int16 points repeat fitted workloads with
#: another measurement (an older build): they are *repeat measurements*, not hold-outs; 256^3
#: int16 and 1024^3 int32 are true hold-outs (workloads never fitted).
HOLDOUT_POINTS: tuple[TimedPoint, ...] = (
    TimedPoint(
        "square 1024^3 int16 (repeat measurement)",
        1024,
        1024,
        1024,
        "int16",
        64,
        3.75e-3,
        None,
        _SQUARE,
    ),
    TimedPoint(
        "square 512^3 int16 (repeat measurement)",
        512,
        512,
        512,
        "int16",
        64,
        0.85e-3,
        None,
        _SQUARE,
    ),
    TimedPoint(
        "square 256^3 int16 (hold-out)", 256, 256, 256, "int16", 128, 0.60e-3, None, _SQUARE
    ),
    TimedPoint(
        "square 1024^3 int32 (hold-out)", 1024, 1024, 1024, "int32", 32, 11.51e-3, None, _SQUARE
    ),
)


@dataclass(frozen=True)
class PowerPoint:
    """Vivado post-route power estimate of a build (vectorless, low confidence): an estimate by
    Vivado's report_power at default toggle rates, not a board measurement."""

    total_w: float
    aie_w: float
    static_w: float
    memory_w: float
    source: str


TEMPUS_POWER = PowerPoint(
    total_w=10.677,
    aie_w=2.381,
    static_w=1.791,
    memory_w=3.173,
    source="Vivado vectorless power estimate (report_power at default toggle rates), not a board "
    "measurement, of the Tempus 1024^3 int16 build: total 10.677, AIE 2.381, static "
    "1.791, memory (BRAM + NoC-DDRMC + XRAM) 3.173 W (mgrailoo/TEMPUS Evaluation/"
    "1024-1024-1024-d64-int16/metrics_summary.txt; REFERENCES.md s3)",
)


@dataclass(frozen=True)
class PlFigures:
    lut: int
    ff: int
    bram: int
    uram: int
    dsp: int
    source: str


#: The PL data mover of Tempus, invariant to the GEMM size; the default PL figures of a temporal
#: block when the caller supplies none.
TEMPUS_PL = PlFigures(
    lut=9255,
    ff=22986,
    bram=97,
    uram=0,
    dsp=0,
    source="Vivado utilization of the Tempus builds: 9255 LUT, 22986 FF, 97 BRAM, 0 URAM, 0 DSP "
    "(REFERENCES.md s3; mgrailoo/TEMPUS Evaluation/*/metrics_summary.txt)",
)


@dataclass(frozen=True)
class SpatialPoint:
    """A published spatial GEMM design on VCK190 (REFERENCES.md s4)."""

    work: str
    dtype: str
    tops: float
    cores: int
    power_w: float | None
    plio_in: int | None
    plio_out: int | None
    source: str


_ARIES = "ARIES (FPGA'25) on VCK190, REFERENCES.md s4"
_CHARM = "CHARM (FPGA'23) on VCK190, REFERENCES.md s4"

SPATIAL_POINTS: tuple[SpatialPoint, ...] = (
    SpatialPoint("ARIES", "int8", 45.94, 320, 73.8, 72, 80, _ARIES),
    SpatialPoint("ARIES", "int16", 15.86, 352, 76.3, 76, 88, _ARIES),
    SpatialPoint("ARIES", "fp32", 4.92, 352, 63.8, None, None, _ARIES),
    SpatialPoint("CHARM", "int8", 31.31, 192, 62.7, None, None, _CHARM),
    SpatialPoint("CHARM", "int16", 10.03, 288, 64.8, None, None, _CHARM),
    SpatialPoint("CHARM", "fp32", 4.18, 384, 61.9, None, None, _CHARM),
)
