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
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
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
        "--dump-dom",
        html.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'data-plots-rendered="3"' in dom  # set by the page's load handler after layout
    assert dom.count("<circle") >= 3 and "layer-point" in dom
    assert "util-bar" in dom and "bar-steady" in dom
