"""The HTML report's plots, drawn with matplotlib as inline SVG.

Each function takes the report dict (schema ``codesign.report/1``) and returns one ``<svg>``
element as a string. The output is deterministic (fixed ``svg.hashsalt``, no date in the
metadata) so a build's report.html is byte-identical across runs, and text stays text
(``svg.fonttype = none``) so labels are searchable and rendered in the page's font.
Every plot has a title, both axis labels and a legend where colours carry meaning; the
artists carry ``gid`` attributes (``axes``, ``x-label``, ``y-label``) the tests look for.
"""

from __future__ import annotations

import functools
import io
import math
import os
import textwrap
from pathlib import Path
from typing import Any


def _matplotlib_config_dir() -> None:
    """Keep matplotlib's font cache out of HOME (issue 11 item 13: nothing written outside the
    model, the build and codesign's documented cache): ``MPLCONFIGDIR`` defaults to
    ``matplotlib/`` in codesign's cache (:func:`codesign.rtl.verilog.cache_root`, not imported
    here: it pulls in Amaranth and the file layer); with ``CODESIGN_NO_CACHE`` set, to a
    temporary folder removed at exit. A MPLCONFIGDIR the user set is kept."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    if os.environ.get("CODESIGN_NO_CACHE", "0") in ("", "0"):
        if os.environ.get("CODESIGN_CACHE_DIR"):
            root = Path(os.environ["CODESIGN_CACHE_DIR"])
        else:
            root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codesign"
        os.environ["MPLCONFIGDIR"] = str(root / "matplotlib")
    else:
        import atexit
        import shutil
        import tempfile

        tmp = tempfile.mkdtemp(prefix="codesign-mpl-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        os.environ["MPLCONFIGDIR"] = tmp


_matplotlib_config_dir()

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # no display: render to SVG only

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: One colour per bound, from the Okabe-Ito palette (distinguishable with colour blindness;
#: no two greys).
BOUND_COLOURS = {
    "ddr": "#D55E00",
    "plio": "#E69F00",
    "compute": "#009E73",
    "cascade": "#CC79A7",
    "launch": "#000000",
    "stream": "#0072B2",
    "host": "#56B4E9",
}
#: Phases of a layer's latency (critical path), as stacked bar segments.
PHASE_COLOURS = {
    "launch": "#000000",
    "reconfig": "#009E73",
    "fill": "#E69F00",
    "steady": "#0072B2",
}
_RC = {
    "svg.hashsalt": "codesign",
    "svg.fonttype": "none",
    "font.size": 10,
    "axes.titlesize": 11,
    "font.family": "sans-serif",
}


def _svg(fig: Figure, gid: str) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), sized by its viewBox."""
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight",
        pad_inches=0.1,
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # id and class for the page (CSS scales it to its box; tests find the plots by class)
    return text.replace("<svg ", f'<svg id="{gid}" class="plot" ', 1)


def _label(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_gid("axes")
    ax.xaxis.label.set_gid("x-label")
    ax.yaxis.label.set_gid("y-label")


def _short(name: str, width: int = 28) -> str:
    """A layer name wrapped onto lines of ``width`` characters (long fused names stay whole),
    as plain text (:func:`_plain`)."""
    lines = textwrap.wrap(name, width, break_on_hyphens=False, break_long_words=True)
    return "\n".join(_plain(line) for line in lines)


@functools.cache
def _has_glyph(char: str) -> bool:
    from matplotlib.font_manager import FontProperties, findfont, get_font

    with plt.rc_context(_RC):
        font = get_font(findfont(FontProperties(family=[_RC["font.family"]])))
    return char.isprintable() and font.get_char_index(ord(char)) != 0


def _plain(text: str) -> str:
    """Text from a model as matplotlib shows it literally: ``$`` escaped (it would start
    mathtext) and every character the plot font cannot draw, or that does not print, as a
    ``\\uXXXX`` escape (matplotlib would warn and draw a box)."""
    return "".join("\\$" if c == "$" else c if _has_glyph(c) else f"\\u{ord(c):04x}" for c in text)


def roofline(report: dict[str, Any]) -> str:
    """Log-log roofline: GOPS against operations per DDR byte; each layer is a numbered point
    whose number and name are in the legend (no labels on the plot, so none overlap)."""
    b = report["board"]
    pts = [
        (i, x) for i, x in enumerate(report["layers"], 1) if x.get("intensity") and x.get("gops")
    ]
    peak = max((x["peak_gops"] for x in report["layers"] if x.get("peak_gops")), default=None)
    peak = peak or max(b["peak_gops"].values())
    bw, bw_peak = b.get("ddr_achieved_gbs"), b.get("ddr_peak_gbs")
    xs = [x["intensity"] for _, x in pts] + ([peak / bw] if bw else [])
    x_lo = min(xs) / 4 if xs else 0.1
    x_hi = max(xs) * 4 if xs else 1000.0
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        ax.set_xscale("log")
        ax.set_yscale("log")
        grid = [x_lo * (x_hi / x_lo) ** (k / 50) for k in range(51)]
        ax.axhline(peak, color="#555555", lw=1.5, label=f"block peak {peak:,.0f} GOPS")
        if bw:
            ax.plot(
                grid,
                [min(peak, bw * v) for v in grid],
                color="#D55E00",
                lw=1.5,
                label=f"achieved DDR {bw:.1f} GB/s",
            )
        if bw_peak:
            ax.plot(
                grid,
                [min(peak, bw_peak * v) for v in grid],
                color="#D55E00",
                lw=1,
                ls="--",
                label=f"DDR peak {bw_peak:.1f} GB/s",
            )
        for i, x in pts:
            ax.scatter(
                x["intensity"],
                x["gops"],
                s=36,
                color=BOUND_COLOURS.get(x["bound"], "#999999"),
                edgecolor="white",
                zorder=3,
                label=f"{i}: {_short(x['name'], 40)} ({x['bound']})",
            )
        # one number label per position: layers at the same point share it ("3,5"), so no two
        # labels are drawn on top of each other
        at: dict[tuple[float, float], list[int]] = {}
        for i, x in pts:
            # points within 1% of each other (in log space) are drawn at the same place
            key = (round(math.log10(x["intensity"]), 2), round(math.log10(x["gops"]), 2))
            at.setdefault(key, []).append(i)
        for (lx, ly), ids in at.items():
            ax.annotate(
                ",".join(map(str, ids)),
                (10**lx, 10**ly),
                xytext=(5, 4),
                textcoords="offset points",
                fontsize=8,
            )
        ys = [x["gops"] for _, x in pts] + [peak]
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(min(ys) / 4, peak * 3)
        _label(ax, "Roofline (modelled)", "operations per DDR byte", "GOPS")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        ax.grid(True, which="major", color="#dddddd", lw=0.6)
        return _svg(fig, "roofline")


def breakdown(report: dict[str, Any]) -> str:
    """Per-layer latency as horizontal stacked bars: launch, reconfiguration, pipeline fill,
    steady state (ms). Under whole-model execution the launch is one bar of its own, paid once
    per inference. The y labels name the layer and its bound; long names wrap instead of being
    clipped."""
    layers = report["layers"]
    ex = report.get("execution")
    if ex:
        once = {"name": "launch, once per inference", "bound": "launch"}
        layers = [{**once, "critical_path_s": {"launch": ex["launch_s"]}}, *layers]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(layers) + 1.4))
        names = [f"{_short(x['name'])} [{x['bound']}]" for x in layers]
        left = [0.0] * len(layers)
        for phase, colour in PHASE_COLOURS.items():
            widths = [x.get("critical_path_s", {}).get(phase, 0.0) * 1e3 for x in layers]
            ax.barh(names, widths, left=left, color=colour, label=phase)
            left = [a + w for a, w in zip(left, widths, strict=True)]
        ax.invert_yaxis()  # first layer on top
        ax.set_xlim(0, max(left + [1e-6]) * 1.05)
        _label(ax, "Per-layer latency (modelled)", "time ms", "layer [bound]")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(True, axis="x", color="#dddddd", lw=0.6)
        return _svg(fig, "breakdown")


def utilisation(report: dict[str, Any]) -> str:
    """Used / available per resource as horizontal bars, with the percentage at each bar's end;
    a resource whose capacity the board file does not give is shown as "unknown", not as 0%."""
    rows = report["resources"]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 1.2))
        names = [r["resource"] for r in rows]
        fracs = [r["fraction"] if r["fraction"] is not None else 0.0 for r in rows]
        colours = ["#D55E00" if f > 1 else "#0072B2" for f in fracs]
        ax.barh(names, fracs, color=colours)
        x_max = max([1.0] + fracs) * 1.25  # room for the labels inside the axes
        for y, (r, f) in enumerate(zip(rows, fracs, strict=True)):
            text = "unknown capacity" if r["fraction"] is None else f"{f:.0%}"
            ax.text(f + x_max * 0.01, y, text, va="center", fontsize=8)
        ax.axvline(1.0, color="#555555", lw=1, ls="--")
        ax.invert_yaxis()
        ax.set_xlim(0, x_max)
        ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0))
        _label(
            ax,
            f"Utilisation of {report['board']['name']} (modelled)",
            "used / available",
            "resource",
        )
        return _svg(fig, "utilisation")
