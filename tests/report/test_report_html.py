"""The report dict, its HTML page (checked in headless chromium) and the terminal renderer."""

import shutil
import subprocess

import pytest
from rich.console import Console

from codesign.boards import load
from codesign.cost import (
    GemmWorkload,
    PlUsage,
    choose_temporal_config,
    estimate_host_layer,
    estimate_stream_layer,
    estimate_temporal_gemm,
    gemm_layer,
)
from codesign.cost.workload import TemporalConfig
from codesign.errors import FitError, OptionError
from codesign.report.build import SCHEMA, compare_spatial, make_report
from codesign.report.html import render_html
from codesign.report.terminal import render_terminal


def _layers(board):
    w1, w2 = GemmWorkload(128, 768, 2304, "int8"), GemmWorkload(128, 768, 3072, "int8")
    return [
        gemm_layer("qkv <proj>", choose_temporal_config(board, w1).estimate),
        estimate_stream_layer(
            board, "softmax", 128 * 128 * 12 * 2, 128 * 128 * 12, pl=PlUsage(lut=3000)
        ),
        gemm_layer("ffn1", choose_temporal_config(board, w2).estimate),
        estimate_host_layer(board, "topk", 1_000_000, 200_000),
    ]


@pytest.fixture(scope="module")
def report():
    board = load("vek280")
    return make_report(
        board,
        _layers(board),
        title="demo",
        spatial=compare_spatial(board, GemmWorkload(512, 512, 512, "int8")),
    )


def test_schema_fields(report):
    assert report["schema"] == SCHEMA and report["modelled"] is True
    assert {
        "board",
        "layers",
        "totals",
        "resources",
        "power",
        "calibration",
        "spatial",
        "notes",
    } <= set(report)
    layer = report["layers"][0]
    for key in (
        "name",
        "kind",
        "M",
        "K",
        "N",
        "dtype",
        "tile",
        "iterations",
        "time_s",
        "bound",
        "gops",
        "ddr_bytes",
        "power_w",
        "critical_path_s",
        "breakdown_s",
        "intensity",
    ):
        assert key in layer
    assert report["totals"]["time_s"] == pytest.approx(sum(x["time_s"] for x in report["layers"]))
    assert any(c["tolerance"] is not None and c["ok"] for c in report["calibration"])
    assert any("lower bound" in n for n in report["notes"])  # VEK280 static power not gathered
    # two GEMMs share the temporal block's data mover: counted once
    lut = {r["resource"]: r["used"] for r in report["resources"]}["PL LUT"]
    assert lut == 9255 + 3000


def test_too_big_for_the_board_is_a_fit_error():
    ve = load("ve2302")
    e = estimate_temporal_gemm(ve, GemmWorkload(4096, 4096, 4096), TemporalConfig(6, 8, 64, 64, 64))
    with pytest.raises(FitError, match=r"does not fit ve2302: AIE cores 48 > 34 \(over by 14\)"):
        make_report(ve, [gemm_layer("big", e)], title="big model")


def test_html_is_self_contained_and_escaped(report):
    page = render_html(report)
    assert page.count("<svg") == 3
    for plot in ('id="roofline"', 'id="breakdown"', 'id="utilisation"'):
        assert plot in page
    assert "qkv &lt;proj&gt;" in page and "<proj>" not in page
    namespaces = (
        'xmlns="http://www.w3.org/2000/svg"',
        'xmlns:xlink="http://www.w3.org/1999/xlink"',
    )
    for ns in namespaces:
        page = page.replace(ns, "")
    assert "http://" not in page
    assert "https://" not in page and "<script src" not in page
    assert "modelled" in page


def test_html_rejects_other_schemas():
    with pytest.raises(OptionError, match="schema"):
        render_html({"schema": "other"})


def test_terminal_renderer(report):
    con = Console(record=True, width=200)
    render_terminal(report, con)
    text = con.export_text()
    assert "modelled" in text and "calibration" in text and "ffn1" in text


@pytest.mark.chromium
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install -y chromium)"
)
def test_plots_render_in_headless_chromium(report, tmp_path):
    html = tmp_path / "report.html"
    html.write_text(render_html(report))
    cmd = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--window-size=1400,3000",
        "--dump-dom",
        html.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    # set by the page's load handler after layout: 3 plots with axes, both axis labels and marks
    assert 'data-plots-rendered="3"' in dom
    # at 1400 px no element is wider than its box or the page (the layer table used to be)
    assert 'data-overflowing="0"' in dom, dom[dom.index("data-overflowing-list") :][:300]
    for gid in ('id="axes', 'id="x-label"', 'id="y-label"'):
        assert dom.count(gid) >= 3, gid


def test_plots_are_matplotlib_svg_and_deterministic(report):
    from codesign.report import plots

    first = render_html(report)
    assert first == render_html(report)  # no date, fixed hash salt
    assert "<metadata" not in first and "Matplotlib" not in first
    for draw in (plots.roofline, plots.breakdown, plots.utilisation):
        svg = draw(report)
        assert svg.startswith("<svg ") and 'class="plot"' in svg
        assert 'id="x-label"' in svg and 'id="y-label"' in svg


def test_bound_colours_are_distinct():
    from codesign.report.plots import BOUND_COLOURS

    def rgb(c: str) -> tuple[int, ...]:
        return tuple(int(c[i : i + 2], 16) for i in (1, 3, 5))

    cols = [rgb(c) for c in BOUND_COLOURS.values()]
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 80, (
                a,
                b,
            )  # RGB Manhattan distance
    greys = [c for c in cols if max(c) - min(c) < 30]
    assert len(greys) <= 1


def test_html_shows_fit_advice_and_spatial_plio_limit(report):
    page = render_html(report)
    assert 'id="fit"' in page and report["fit"]["text"] in page
    assert all(s["plio_limit"] for s in report["spatial"])
    assert "(board limit)" in page


def test_plot_labels_show_model_text_literally():
    """A layer name from a model with a control character, a character the plot font lacks and
    a ``$`` (mathtext) is drawn as escapes, without a matplotlib warning or parse error."""
    import warnings

    from codesign.report import plots

    board = load("vek280")
    w = GemmWorkload(64, 64, 64, "int8")
    name = "a\x1db$x^$\u4e2d"
    rep = make_report(board, [gemm_layer(name, choose_temporal_config(board, w).estimate)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svgs = [plots.roofline(rep), plots.breakdown(rep)]
    for svg in svgs:
        assert "a\\u001db$x^$\\u4e2d" in svg
