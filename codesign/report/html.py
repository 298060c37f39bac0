"""Render the report dict (schema ``codesign.report/1``) as one self-contained HTML page.

Inline SVG plots drawn by matplotlib (roofline with each layer, per-layer latency breakdown,
utilisation bars; :mod:`codesign.report.plots`) and tables; no external script, font or
stylesheet, so the page works offline. A small inline script marks
``<body data-plots-rendered=N data-overflowing=M>`` once the browser has laid out the page: N
plots with axes and labels, M elements wider than their box (tests use both).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined, Template, select_autoescape
from markupsafe import Markup

from codesign.errors import OptionError
from codesign.report import plots
from codesign.report.terminal import SPARSITY_COLUMNS, sparsity_rows

SCHEMA = "codesign.report/1"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


@functools.cache
def _template() -> Template:
    """The page template, compiled once per process (compiling it costs more than rendering)."""
    env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined)
    text = resources.files("codesign.report").joinpath("report.html.j2").read_text()
    return env.from_string(text)


def render_html(report: dict[str, Any]) -> str:
    """The HTML page for ``report``; :class:`OptionError` if the dict is not a version-1 report."""
    if report.get("schema") != SCHEMA:
        raise OptionError(f"report schema must be {SCHEMA!r}, not {report.get('schema')!r}")
    return _template().render(
        r=report,
        fmt=_fmt,
        sparsity=sparsity_rows(report),
        sparsity_columns=SPARSITY_COLUMNS,
        roofline=Markup(plots.roofline(report)),
        breakdown=Markup(plots.breakdown(report)),
        utilisation=Markup(plots.utilisation(report)),
    )
