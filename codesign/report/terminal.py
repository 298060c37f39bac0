"""Render the report dict (schema ``codesign.report/1``) as rich tables in the terminal.

Every table is readable at 80 columns, the width rich falls back to when output goes to a file
or a CI log: the default layer table has fewer columns (``wide=True`` shows them all), and every
cell wraps or folds instead of being cut with an ellipsis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: Columns of the layer table shown by default; ``--wide`` shows :data:`LAYER_COLUMNS`.
DEFAULT_LAYER_COLUMNS = ("layer", "kind", "MxKxN", "dtype", "time ms", "bound", "GOPS")
LAYER_COLUMNS = (
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
    "per-launch ms",
    "bound",
    "GOPS",
    "DDR MB",
    "W",
)
#: Numeric columns, right-aligned; every other column is left-aligned.
_RIGHT = {
    "MxKxN",
    "zeros",
    "weight KB",
    "gain",
    "tile",
    "iters",
    "transactions",
    "beats/cycle",
    "time s",
    "LUT",
    "FF",
    "DSP",
    "BRAM36",
    "cycles",
    "time ms",
    "per-launch ms",
    "GOPS",
    "DDR MB",
    "W",
    "used",
    "available",
    "%",
    "measured",
    "modelled",
    "error",
    "max |err|",
    "mean |err|",
    "max LSB",
    "equal",
    "tiles",
    "MHz",
    "memory tiles",
}


def make_table(title: str | None, columns: Sequence[str], **kwargs: Any) -> Table:
    """A table whose cells wrap at word boundaries and fold long words, never ending in "…"."""
    t = Table(title=title, **kwargs)
    for col in columns:
        t.add_column(col, justify="right" if col in _RIGHT else "left", overflow="fold")
    return t


def _f(v: float | None, d: int = 2) -> str:
    return "-" if v is None else f"{v:,.{d}f}"


def _layer_cells(x: dict[str, Any]) -> dict[str, str]:
    mkn = "x".join(str(x[k]) for k in ("M", "K", "N")) if x.get("M") is not None else ""
    if mkn and x.get("batch"):  # a batched product: heads * per-head GEMM
        mkn = f"{x['batch']}*{mkn}"
    return {
        "layer": x["name"],
        "kind": x["kind"],
        "MxKxN": mkn,
        "dtype": x.get("dtype") or "",
        "block": "x".join(map(str, x["block"])) if x.get("block") else "",
        "tile": "x".join(map(str, x["tile"])) if x.get("tile") else "",
        "dataflow": x.get("dataflow") or "",
        "iters": str(x["iterations"]) if x.get("iterations") is not None else "",
        "cycles": f"{x['cycles']:,}" if x.get("cycles") is not None else "",
        "time ms": _f(x["time_s"] * 1e3, 3),
        "per-launch ms": _f(x["per_launch_time_s"] * 1e3, 3) if "per_launch_time_s" in x else "",
        "bound": x["bound"],
        "GOPS": _f(x["gops"], 1),
        "DDR MB": _f(x["ddr_bytes"] / 2**20),
        "W": _f(x["power_w"]),
    }


#: Columns of the per-layer weight sparsity table.
SPARSITY_COLUMNS = ("layer", "zeros", "N:M in K", "stream", "weight KB", "gain")


def sparsity_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """One row per GEMM layer with measured weight sparsity: zero fraction, sparsest N:M pattern
    in K, how the weight streams ("2:4" compressed or dense), the weight KB streamed (dense KB
    beside it when compressed) and the modelled gain of the compressed stream."""
    rows = []
    for x in report["layers"]:
        if "weight_zero_fraction" not in x:
            continue
        kb = f"{x['weight_bytes'] / 1024:,.1f}"
        if x["weight_bytes"] != x["weight_bytes_dense"]:
            kb += f" of {x['weight_bytes_dense'] / 1024:,.1f}"
        rows.append(
            {
                "layer": x["name"],
                "zeros": f"{x['weight_zero_fraction']:.1%}",
                "N:M in K": x["weight_nm"] or "-",
                "stream": f"{x['sparse_b']} compressed" if x["sparse_b"] else "dense",
                "weight KB": kb,
                "gain": f"{x['sparse_gain']:.3f}x",
            }
        )
    return rows


def render_sparsity(report: dict[str, Any], con: Console) -> None:
    """The per-layer weight sparsity table (nothing when no GEMM layer reports it)."""
    rows = sparsity_rows(report)
    if not rows:
        return
    t = make_table("weight sparsity per GEMM (measured; gain modelled)", SPARSITY_COLUMNS)
    for r in rows:
        # names come from the model: escaped so that rich renders them as text
        t.add_row(*(escape(r[c]) for c in SPARSITY_COLUMNS))
    con.print(t)


def _render_modes(con: Console, layers: list[dict[str, Any]]) -> None:
    """The compute mode of each layer that had a choice (MatMulNBits: int8 x int4 or bf16), and
    why; nothing when no layer had one."""
    rows = [x for x in layers if x.get("mode")]
    if not rows:
        return
    t = make_table("compute mode chosen by the cost model (modelled)", ("layer", "mode", "why"))
    for x in rows:
        # names come from the model: escaped so that rich renders them as text
        cells = (x["name"], x["mode"], x.get("mode_reason", ""))
        t.add_row(*(escape(" ".join(str(c).split())) for c in cells))
    con.print(t)


def render_terminal(
    report: dict[str, Any], console: Console | None = None, *, wide: bool = False
) -> None:
    """Print the layers, totals, utilisation, power and calibration tables (all modelled).

    ``wide``: every layer column (block, tile, dataflow, iterations, cycles, DDR, power);
    by default the table keeps the columns that fit in 80 terminal columns.
    """
    con = console or Console()
    con.print(f"[bold]{report['title']}[/bold]  (every figure is modelled)")
    cols = LAYER_COLUMNS if wide else DEFAULT_LAYER_COLUMNS
    t = make_table("layers (modelled)", cols)
    for x in report["layers"]:
        cells = _layer_cells(x)
        t.add_row(*(cells[c] for c in cols))
    tot = report["totals"]
    total = {
        "layer": "total",
        "time ms": _f(tot["time_s"] * 1e3, 3),
        "GOPS": _f(tot["gops"], 1),
        "DDR MB": _f(tot["ddr_bytes"] / 2**20),
        "W": _f(tot["avg_power_w"]),
    }
    if "per_launch_time_s" in tot:
        total["per-launch ms"] = _f(tot["per_launch_time_s"] * 1e3, 3)
    t.add_row(*(total.get(c, "") for c in cols))
    con.print(t)
    ex = report.get("execution")
    if ex:
        con.print(
            f"latency {ex['time_s'] * 1e3:.3f} ms: one graph run per inference "
            f"(launch {ex['launch_s'] * 1e3:.3f} ms once; modelled)\n"
            f"{ex['per_launch_label']}: {ex['per_launch_time_s'] * 1e3:.3f} ms "
            f"({ex['speedup_over_per_launch']:.2f}x the latency; modelled, for comparison)"
        )
    if not wide:
        con.print("[dim](block, tile, dataflow, cycles, DDR and power per layer: --wide)[/dim]")
    render_sparsity(report, con)
    _render_modes(con, report["layers"])
    from codesign.report.placement import render_placement

    render_placement(report, con)
    u = make_table(
        f"utilisation against {report['board']['name']}", ("resource", "used", "available", "%")
    )
    for r in report["resources"]:
        frac = r.get("fraction")
        pct = "-" if frac is None else f"{frac:.0%}"
        if frac is not None and frac > 1:
            pct = f"[red]{pct}[/red]"
        u.add_row(
            r["resource"] + (" (not synthesised)" if r.get("synthesised") is False else ""),
            f"{r['used']:,}",
            "unknown" if r["available"] is None else f"{r['available']:,}",
            pct,
        )
    con.print(u)
    fit = report.get("fit")
    if fit:
        colour = "green" if fit["fits"] and not fit["unchecked"] else "yellow"
        if not fit["fits"]:
            colour = "red"
        con.print(f"[{colour}]fit:[/{colour}] {fit['text']}")
    p = report["power"]
    pt = make_table(
        "power W (modelled" + (", lower bound" if not p["complete"] else "") + ")",
        ("component", "W"),
    )
    for k, v in p["components"].items():
        pt.add_row(k, _f(v, 3))
    pt.add_row("total", _f(p["total_w"]))
    con.print(pt)
    c = make_table(
        "calibration (model vs published measurements)",
        ("point", "quantity", "measured", "modelled", "error", "status"),
    )
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
    for a in report.get("advice", []):
        con.print(f"[bold yellow]advice:[/bold yellow] {a}")
    for n in report["notes"]:
        con.print(f"- {n}")
