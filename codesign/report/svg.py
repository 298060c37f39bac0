"""Inline SVG plots for the HTML report (no JavaScript, no external resources).

Each function takes the report dict (schema ``codesign.report/1``) and returns one ``<svg>``
element as a string, with every text escaped.
"""

from __future__ import annotations

from html import escape
from math import floor, log10
from typing import Any

BOUND_COLOURS = {
    "ddr": "#d62728",
    "plio": "#ff7f0e",
    "compute": "#2ca02c",
    "cascade": "#9467bd",
    "launch": "#7f7f7f",
    "stream": "#1f77b4",
    "host": "#8c564b",
}
_W, _H = 640, 380
_ML, _MR, _MT, _MB = 70, 20, 20, 50


def _num(x: float) -> str:
    return f"{x:.2f}"


def _decades(lo: float, hi: float) -> list[float]:
    return [10.0**e for e in range(floor(log10(lo)), floor(log10(hi)) + 1) if lo <= 10.0**e <= hi]


def roofline(report: dict[str, Any]) -> str:
    """Log-log roofline: GOPS against operations per DDR byte, each layer placed on it."""
    b = report["board"]
    pts = [x for x in report["layers"] if x.get("intensity") and x.get("gops")]
    peak = max((x["peak_gops"] for x in report["layers"] if x.get("peak_gops")), default=None)
    peak = peak or max(b["peak_gops"].values())
    bw = b.get("ddr_achieved_gbs")
    bw_peak = b.get("ddr_peak_gbs")
    xs = [x["intensity"] for x in pts] + ([peak / bw] if bw else [])
    ys = [x["gops"] for x in pts] + [peak]
    x_lo = 10 ** floor(log10(min(xs) / 3)) if xs else 0.1
    x_hi = 10 ** (floor(log10(max(xs) * 3)) + 1) if xs else 1000
    y_lo = 10 ** floor(log10(min(ys) / 3))
    y_hi = 10 ** (floor(log10(peak * 2)) + 1)
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def X(v: float) -> float:
        return _ML + pw * (log10(v) - log10(x_lo)) / (log10(x_hi) - log10(x_lo))

    def Y(v: float) -> float:
        return _MT + ph * (1 - (log10(v) - log10(y_lo)) / (log10(y_hi) - log10(y_lo)))

    out = [
        f'<svg id="roofline" class="plot" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="roofline">',
        f'<rect x="{_ML}" y="{_MT}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    for v in _decades(x_lo, x_hi):
        out.append(
            f'<line x1="{_num(X(v))}" y1="{_MT}" x2="{_num(X(v))}" y2="{_MT + ph}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{_num(X(v))}" y="{_H - _MB + 16}" font-size="11" text-anchor="middle">{v:g}</text>'
        )
    for v in _decades(y_lo, y_hi):
        out.append(
            f'<line x1="{_ML}" y1="{_num(Y(v))}" x2="{_ML + pw}" y2="{_num(Y(v))}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{_ML - 6}" y="{_num(Y(v) + 4)}" font-size="11" text-anchor="end">{v:g}</text>'
        )
    out.append(
        f'<text x="{_ML + pw / 2}" y="{_H - 8}" font-size="12" text-anchor="middle">operations per DDR byte</text>'
    )
    out.append(
        f'<text x="14" y="{_MT + ph / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {_MT + ph / 2})">GOPS (modelled)</text>'
    )

    def roof(bw_gbs: float, cls: str, dash: str) -> None:
        knee = peak / bw_gbs
        x0 = max(x_lo, y_lo / bw_gbs)
        segs = [(x0, bw_gbs * x0), (min(knee, x_hi), min(peak, bw_gbs * x_hi))]
        if knee < x_hi:
            segs.append((x_hi, peak))
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{_num(X(a))},{_num(Y(c))}" for i, (a, c) in enumerate(segs)
        )
        out.append(
            f'<path class="{cls}" d="{d}" fill="none" stroke="#333" stroke-width="2" stroke-dasharray="{dash}"/>'
        )

    if bw:
        roof(bw, "roof roof-ddr", "")
        out.append(
            f'<text x="{_ML + 6}" y="{_MT + 14}" font-size="11">DDR achieved {bw:.1f} GB/s, peak compute {peak:.0f} GOPS</text>'
        )
    else:
        out.append(
            f'<line class="roof" x1="{_ML}" y1="{_num(Y(peak))}" x2="{_ML + pw}" y2="{_num(Y(peak))}" stroke="#333" stroke-width="2"/>'
        )
    if bw_peak:
        roof(bw_peak, "roof roof-ddr-peak", "5,4")
    for x in pts:
        colour = BOUND_COLOURS.get(x["bound"], "#17becf")
        cx, cy = _num(X(x["intensity"])), _num(Y(x["gops"]))
        out.append(
            f'<circle class="layer-point" cx="{cx}" cy="{cy}" r="5" fill="{colour}" stroke="#000">'
            f"<title>{escape(x['name'])}: {x['gops']:.1f} GOPS, {x['intensity']:.1f} ops/B, {escape(x['bound'])}-bound</title></circle>"
        )
        out.append(
            f'<text x="{_num(float(cx) + 7)}" y="{_num(float(cy) - 6)}" font-size="10">{escape(x["name"])}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def breakdown(report: dict[str, Any]) -> str:
    """Per-layer horizontal bars: fixed overhead, pipeline fill and steady state (coloured by the
    bound), scaled to the slowest layer."""
    layers = report["layers"]
    row, ml = 26, 160
    h = _MT + row * max(len(layers), 1) + _MB
    pw = _W - ml - 90
    t_max = max((x["time_s"] for x in layers), default=1.0) or 1.0
    out = [
        f'<svg id="breakdown" class="plot" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{h}" '
        f'viewBox="0 0 {_W} {h}" role="img" aria-label="per-layer latency breakdown">'
    ]
    for i, x in enumerate(layers):
        y = _MT + i * row
        cp = x.get("critical_path_s") or {"steady": x["time_s"]}
        out.append(
            f'<text x="{ml - 6}" y="{y + 15}" font-size="11" text-anchor="end">{escape(x["name"])}</text>'
        )
        x0 = ml
        for part in ("launch", "fill", "steady"):
            v = cp.get(part, 0.0)
            if v <= 0:
                continue
            w = max(pw * v / t_max, 0.5)
            colour = {"launch": "#bbbbbb", "fill": "#dddddd"}.get(
                part, BOUND_COLOURS.get(x["bound"], "#17becf")
            )
            out.append(
                f'<rect class="bar bar-{part}" x="{_num(x0)}" y="{y + 4}" width="{_num(w)}" height="{row - 8}" '
                f'fill="{colour}"><title>{escape(x["name"])} {part}: {v * 1e3:.3f} ms</title></rect>'
            )
            x0 += w
        out.append(
            f'<text x="{_num(x0 + 4)}" y="{y + 15}" font-size="10">{x["time_s"] * 1e3:.3f} ms, {escape(x["bound"])}</text>'
        )
    y = _MT + row * len(layers) + 18
    lx = ml
    for name, colour in [("overhead", "#bbbbbb"), ("fill", "#dddddd")] + list(
        BOUND_COLOURS.items()
    ):
        out.append(f'<rect x="{lx}" y="{y}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 13}" y="{y + 9}" font-size="10">{escape(name)}</text>')
        lx += 13 + 7 * len(name) + 10
    out.append("</svg>")
    return "\n".join(out)


def utilisation(report: dict[str, Any]) -> str:
    """Horizontal bars of resource use against the board's capacity (red above 100%)."""
    rows = report["resources"]
    row, ml = 24, 150
    h = _MT + row * max(len(rows), 1) + 30
    pw = _W - ml - 150
    out = [
        f'<svg id="utilisation" class="plot" xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{h}" '
        f'viewBox="0 0 {_W} {h}" role="img" aria-label="utilisation against the board">'
    ]
    for i, r in enumerate(rows):
        y = _MT + i * row
        out.append(
            f'<text x="{ml - 6}" y="{y + 14}" font-size="11" text-anchor="end">{escape(r["resource"])}</text>'
        )
        out.append(
            f'<rect x="{ml}" y="{y + 3}" width="{pw}" height="{row - 8}" fill="#f3f3f3" stroke="#ccc"/>'
        )
        f = r.get("fraction")
        if f is None:
            label = f"{r['used']:,}{r['unit']} / n/a"
        else:
            w = pw * min(f, 1.0)
            colour = "#d62728" if f > 1 else ("#ff7f0e" if f > 0.8 else "#2ca02c")
            out.append(
                f'<rect class="util-bar" x="{ml}" y="{y + 3}" width="{_num(max(w, 0.5))}" height="{row - 8}" fill="{colour}">'
                f"<title>{escape(r['resource'])}: {f:.1%}</title></rect>"
            )
            label = f"{r['used']:,}{r['unit']} / {r['available']:,}{r['unit']} ({f:.0%})"
        out.append(f'<text x="{ml + pw + 6}" y="{y + 14}" font-size="10">{escape(label)}</text>')
    out.append(
        f'<line x1="{ml + pw}" y1="{_MT}" x2="{ml + pw}" y2="{_MT + row * len(rows)}" stroke="#333" stroke-dasharray="3,3"/>'
    )
    out.append("</svg>")
    return "\n".join(out)
