"""Print the modelled gain of codesign's reuse dataflow over Tempus's replicated streaming on the
same 2x8 block and tile (VE2302, int16, PL 312.5 MHz), and of the fully chosen configuration, then
the sensitivity of the gain to the kernel efficiency (the compute floor of the reuse dataflow):
at GAMA's sustained 0.85, CHARM's gen-1 0.95 and aie4ml's single-kernel 0.986.

    python bench/dataflow.py
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console
from rich.table import Table

from codesign.boards import Board, load
from codesign.cost import GemmWorkload, choose_temporal_config, estimate_temporal_gemm
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
    sensitivity(board)


#: Published kernel efficiencies: GAMA (AIE-ML sustained GEMM), CHARM (gen-1 single kernel),
#: aie4ml (AIE-ML single kernel). The board file's value is one of them.
EFFICIENCIES = ((0.85, "GAMA"), (0.95, "CHARM gen-1"), (0.986, "aie4ml"))


def with_efficiency(board: Board, eff: float) -> Board:
    """``board`` with ``perf.kernel_efficiency`` set to ``eff``."""
    extra = dict(board.extra)
    extra["perf"] = {**extra.get("perf", {}), "kernel_efficiency": eff}
    return replace(board, extra=extra)


def sensitivity(board: Board) -> None:
    """Gain of the chosen configuration over Tempus's policy on its best tile, same block."""
    t = Table(title="sensitivity of the reuse gain to the kernel efficiency (modelled)")
    t.add_column("GEMM")
    for eff, who in EFFICIENCIES:
        t.add_column(f"{eff:g} ({who})", justify="right")
    for n in (512, 1024, 2048):
        w = GemmWorkload(n, n, n, "int16")
        row = [w.label()]
        for eff, _ in EFFICIENCIES:
            ch = choose_temporal_config(with_efficiency(board, eff), w, chains=2, cascade=8)
            row.append(f"{ch.gain_over_tempus:.2f}x ({ch.estimate.bound})")
        t.add_row(*row)
    t.caption = (
        f"2x8 block; board value {board.extra['perf']['kernel_efficiency']}; gain = Tempus's policy "
        "on its best tile / chosen tile and dataflow"
    )
    Console(width=200).print(t)


if __name__ == "__main__":
    main()
