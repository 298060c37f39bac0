"""Render the report dict (schema ``codesign.report/1``) as rich tables in the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _f(v: float | None, d: int = 2) -> str:
    return "-" if v is None else f"{v:,.{d}f}"


def render_terminal(report: dict[str, Any], console: Console | None = None) -> None:
    """Print the layers, totals, utilisation, power and calibration tables (all modelled)."""
    con = console or Console()
    con.print(f"[bold]{report['title']}[/bold]  (every figure is modelled)")
    t = Table(title="layers (modelled)")
    for col in (
        "layer",
        "kind",
        "MxKxN",
        "dtype",
        "block",
        "tile",
        "dataflow",
        "iters",
        "cycles",
        "time ms",
        "bound",
        "GOPS",
        "DDR MB",
        "W",
    ):
        t.add_column(
            col,
            justify="left" if col in ("layer", "kind", "dtype", "dataflow", "bound") else "right",
        )
    for x in report["layers"]:
        mkn = "x".join(str(x[k]) for k in ("M", "K", "N")) if x.get("M") is not None else ""
        t.add_row(
            x["name"],
            x["kind"],
            mkn,
            x.get("dtype") or "",
            "x".join(map(str, x["block"])) if x.get("block") else "",
            "x".join(map(str, x["tile"])) if x.get("tile") else "",
            x.get("dataflow") or "",
            str(x["iterations"]) if x.get("iterations") is not None else "",
            f"{x['cycles']:,}" if x.get("cycles") is not None else "",
            _f(x["time_s"] * 1e3, 3),
            x["bound"],
            _f(x["gops"], 1),
            _f(x["ddr_bytes"] / 2**20),
            _f(x["power_w"]),
        )
    tot = report["totals"]
    t.add_row(
        "total",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        _f(tot["time_s"] * 1e3, 3),
        "",
        _f(tot["gops"], 1),
        _f(tot["ddr_bytes"] / 2**20),
        _f(tot["avg_power_w"]),
    )
    con.print(t)
    u = Table(title=f"utilisation against {report['board']['name']}")
    for col in ("resource", "used", "available", "%"):
        u.add_column(col, justify="left" if col == "resource" else "right")
    for r in report["resources"]:
        frac = r.get("fraction")
        pct = "-" if frac is None else f"{frac:.0%}"
        if frac is not None and frac > 1:
            pct = f"[red]{pct}[/red]"
        u.add_row(
            r["resource"],
            f"{r['used']:,}",
            "-" if r["available"] is None else f"{r['available']:,}",
            pct,
        )
    con.print(u)
    p = report["power"]
    pt = Table(title="power W (modelled" + (", lower bound" if not p["complete"] else "") + ")")
    for k in p["components"]:
        pt.add_column(k, justify="right")
    pt.add_column("total", justify="right")
    pt.add_row(*[_f(v, 3) for v in p["components"].values()], _f(p["total_w"]))
    con.print(pt)
    c = Table(title="calibration (model vs published measurements)")
    for col in ("point", "quantity", "measured", "modelled", "error", "status"):
        c.add_column(col, justify="left" if col in ("point", "quantity", "status") else "right")
    for r in report["calibration"]:
        status = {True: "within", False: "[red]OUTSIDE[/red]", None: "hold-out"}[r["ok"]]
        c.add_row(
            r["name"],
            r["quantity"],
            _f(r["measured"], 3),
            _f(r["modelled"], 3),
            f"{r['error']:+.1%}",
            status,
        )
    con.print(c)
    for n in report["notes"]:
        con.print(f"- {n}")
