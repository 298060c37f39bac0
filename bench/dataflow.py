"""Print the modelled gain of codesign's reuse dataflow over Tempus's replicated streaming on the
same 2x8 block and tile (VE2302, int16, PL 312.5 MHz), and of the fully chosen configuration.

    python bench/dataflow.py
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console
from rich.table import Table

from codesign.boards import load
from codesign.cost import choose_temporal_config, estimate_temporal_gemm
from codesign.cost.calibration import tempus_setup
from codesign.cost.reference import TimedPoint


def main() -> None:
    board = load("ve2302")
    t = Table(title="reuse vs Tempus policy on the Tempus block (VE2302, modelled)")
    for col in (
        "GEMM",
        "Tempus ms",
        "reuse ms",
        "gain",
        "plan",
        "DDR MB tempus -> reuse",
        "bound",
        "chosen config",
        "chosen ms",
        "chosen gain",
    ):
        t.add_column(
            col, justify="left" if col in ("GEMM", "plan", "bound", "chosen config") else "right"
        )
    for n in (512, 768, 1024, 2048, 4096):
        pt = TimedPoint(f"{n}^3", n, n, n, "int16", 64, 1.0, None, "")
        w, c = tempus_setup(pt)
        a = estimate_temporal_gemm(board, w, c)
        b = estimate_temporal_gemm(board, w, replace(c, dataflow="reuse"))
        ch = choose_temporal_config(board, w)
        cc = ch.estimate.config
        t.add_row(
            w.label(),
            f"{a.time_s * 1e3:.3f}",
            f"{b.time_s * 1e3:.3f}",
            f"{a.time_s / b.time_s:.2f}x",
            b.plan.name,
            f"{a.ddr_bytes / 2**20:.0f} -> {b.ddr_bytes / 2**20:.0f}",
            b.bound,
            f"{cc.chains}x{cc.cascade} {cc.tile_m}x{cc.tile_k}x{cc.tile_n} {ch.estimate.plan.name}",
            f"{ch.estimate.time_s * 1e3:.3f}",
            f"{a.time_s / ch.estimate.time_s:.2f}x",
        )
    Console(width=200).print(t)


if __name__ == "__main__":
    main()
