"""Typed access to the performance and power figures of a board file.

The board loader keeps sections it does not type (``perf``, ``power``, ``ps``, ``spatial``) in
:attr:`Board.extra`; this module reads them with their sources and turns a missing figure into a
:class:`BoardError` that names the file and the key, or into ``None`` where the model can go on
without it (power components are reported as missing, never invented).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codesign.boards import Board
from codesign.errors import BoardError


def _section(board: Board, name: str) -> dict[str, Any]:
    sec = board.extra.get(name)
    if not isinstance(sec, dict):
        raise BoardError(
            f"board file {board.name}.json must have a {name!r} section for the perf model"
        )
    return sec


def required(board: Board, section: str, key: str) -> Any:
    """A figure the model cannot do without."""
    v = _section(board, section).get(key)
    if v is None:
        raise BoardError(
            f"board file {board.name}.json: {section}.{key} must be set for the perf model, not null"
        )
    return v


def optional(board: Board, section: str, key: str) -> Any:
    """A figure the model reports as missing when null."""
    sec = board.extra.get(section)
    if not isinstance(sec, dict):
        return None
    return sec.get(key)


@dataclass(frozen=True)
class PerfParams:
    """The figures the temporal model uses, with the board's clocks."""

    aie_clock_hz: float
    pl_clock_hz: float
    ddr_peak_bytes_s: float
    ddr_efficiency: float
    launch_s: float
    run_overhead_s: float
    kernel_efficiency: float
    dma_bytes_per_cycle: float
    stream_bytes_per_cycle: float
    cascade_bytes_per_cycle: float
    max_pl_clock_ratio: float

    @property
    def ddr_bytes_s(self) -> float:
        """Achieved DDR bandwidth the model uses: peak times the fitted efficiency."""
        return self.ddr_peak_bytes_s * self.ddr_efficiency

    @property
    def fixed_overhead_s(self) -> float:
        return self.launch_s + self.run_overhead_s


def perf_params(
    board: Board, pl_clock_mhz: float | None = None, aie_clock_mhz: float | None = None
) -> PerfParams:
    """Collect the perf figures of ``board`` (clocks overridable by a config)."""
    if board.ddr.bandwidth_gbs is None:
        raise BoardError(
            f"board file {board.name}.json: ddr.bandwidth_gbs must be set for the perf model, not null"
        )
    return PerfParams(
        aie_clock_hz=(aie_clock_mhz or board.aie.clock_mhz) * 1e6,
        pl_clock_hz=(pl_clock_mhz or board.pl.default_clock_mhz) * 1e6,
        ddr_peak_bytes_s=board.ddr.bandwidth_gbs * 1e9,
        ddr_efficiency=float(required(board, "perf", "ddr_efficiency")),
        launch_s=float(required(board, "perf", "launch_s")),
        run_overhead_s=float(required(board, "perf", "run_overhead_s")),
        kernel_efficiency=float(required(board, "perf", "kernel_efficiency")),
        dma_bytes_per_cycle=float(required(board, "perf", "dma_bytes_per_cycle")),
        stream_bytes_per_cycle=board.aie.stream_bits / 8,
        cascade_bytes_per_cycle=board.aie.cascade_bits / 8,
        max_pl_clock_ratio=board.plio.max_pl_clock_ratio,
    )
