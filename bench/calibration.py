"""Print the temporal model against Tempus's measurements (REFERENCES.md s3), with the error of
each point, the repeat measurements and hold-outs, the power breakdown (against Vivado's
vectorless estimate) and the fitted parameters.

    python bench/calibration.py          # model vs measurement
    python bench/calibration.py --fit    # also refit the free parameters (to paste in the board file)

Every modelled figure comes from codesign.cost; nothing here is timed on this machine.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from codesign.boards import load
from codesign.cost.calibration import fit_tempus, power_rows, time_rows


def _rows_table(title: str, rows, unit: str) -> Table:
    t = Table(title=title)
    for col in (
        "point",
        f"measured {unit}" if unit == "ms" else f"Vivado estimate {unit}",
        f"modelled {unit}",
        "error",
        "tolerance",
        "ok",
        "bound",
    ):
        t.add_column(col, justify="left" if col in ("point", "bound") else "right")
    for r in rows:
        ok = {True: "yes", False: "NO", None: "not fitted"}[r.ok]
        tol = "-" if r.tolerance is None else f"±{r.tolerance:.0%}"
        t.add_row(
            r.name if unit == "ms" else r.quantity,
            f"{r.measured:.3f}",
            f"{r.modelled:.3f}",
            f"{r.error:+.1%}",
            tol,
            ok,
            r.bound,
        )
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit the free parameters")
    args = ap.parse_args()
    board = load("ve2302")
    con = Console(width=200)
    con.print(
        _rows_table("Tempus GEMM time on VE2302 (modelled vs measured)", time_rows(board), "ms")
    )
    con.print(
        _rows_table(
            "Tempus 1024^3 power (modelled vs Vivado's vectorless estimate, not a board measurement)",
            power_rows(board),
            "W",
        )
    )
    t = Table(title="fitted / calibrated parameters (boards/ve2302.json)")
    t.add_column("parameter")
    t.add_column("value", justify="right")
    t.add_column("source")
    for path in (
        "perf.ddr_efficiency",
        "perf.run_overhead_s",
        "perf.launch_s",
        "power.noc_w_per_gbs",
        "power.aie_core_w_per_ghz",
        "ddr.bandwidth_gbs",
    ):
        sec, key = path.split(".")
        val = getattr(board.ddr, key) if sec == "ddr" else board.extra[sec][key]
        t.add_row(path, f"{val:g}", board.source(path))
    con.print(t)
    con.print(
        "Not fitted: older square_GEMM builds. The 1024^3 and 512^3 int16 points are repeat "
        "measurements of fitted workloads, not hold-outs; 256^3 int16 and 1024^3 int32 are "
        "hold-outs (the 256^3 point is launch-dominated and its single-run overhead is larger "
        "than the fitted one)."
    )
    if args.fit:
        f = fit_tempus(board)
        con.print(
            f"fresh fit: ddr_efficiency={f.ddr_efficiency} run_overhead_s={f.run_overhead_s} "
            f"noc_w_per_gbs={f.noc_w_per_gbs} (max error {f.max_error:.1%})"
        )


if __name__ == "__main__":
    main()
