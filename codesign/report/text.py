"""Terminal rendering of a build report (rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_report(report: dict[str, Any], console: Console) -> None:
    """Print the per-layer table, the totals and the resources of ``report``."""
    layers = Table(
        title=f"{report['board']} ({report['device']}), block {report['block']}: layers (modelled)"
    )
    for col in (
        "layer",
        "unit",
        "GEMM MxKxN",
        "dtype",
        "tile mxkxn",
        "iters",
        "K passes",
        "cycles*",
        "time us*",
        "GOPS*",
        "pad waste",
    ):
        layers.add_column(col, justify="right" if col not in ("layer", "unit", "dtype") else "left")
    for e in report["layers"]:
        if e["kind"] == "gemm":
            layers.add_row(
                e["name"],
                e["unit"],
                f"{e['M']}x{e['K']}x{e['N']}",
                e["dtype"],
                e["tile"],
                str(e["graph_iterations"]),
                str(e["k_passes"]),
                str(e["modelled_cycles"]),
                f"{e['modelled_time_us']:.2f}",
                str(e["modelled_gops"]),
                f"{e['padding_waste']:.1%}",
            )
        else:
            layers.add_row(
                e["name"],
                e["unit"],
                e["kind"] + (f" {e['fn']}" if e.get("fn") else ""),
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
            )
    console.print(layers)
    for e in report["layers"]:
        if "fallback" in str(e.get("solver", "")):
            console.print(f"solver fallback in {e['name']!r}: {e['solver']}")
    t = report["totals"]
    console.print(
        f"total (modelled*): {t['modelled_cycles']} AIE cycles at {report['aie_clock_mhz']:g} MHz = "
        f"{t['modelled_time_us']} us, {t['modelled_gops']} GOPS over {t['gemm_layers']} GEMM layers"
    )
    res = Table(title="resources against the board")
    for col in ("resource", "used", "available", "share"):
        res.add_column(col, justify="right" if col != "resource" else "left")
    for name, r in report["resources"].items():
        share = f"{r['used'] / r['available']:.1%}" if r.get("available") else "n/a"
        res.add_row(name, str(r["used"]), str(r["available"]), share)
    console.print(res)
    console.print(f"* {report['note']}")
