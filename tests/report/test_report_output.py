"""What users see in the report and at compile: the fit verdict, launch-overhead advice, the
PL figures without yosys, the estimate-only board refused, `--version` (issue 10 items 6a,
7, 8, 10, 11, 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codesign import __version__
from codesign.examples import models


def _run(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "codesign", *args], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return models.ffn_block(tmp_path_factory.mktemp("out") / "ffn.onnx")


def test_compile_refuses_a_reference_only_board_in_one_line(cli, model, tmp_path) -> None:
    r = cli("compile", model, "--board", "vck190", "-o", tmp_path / "b")
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "board vck190 is reference-only" in lines[0]
    assert "compile needs one of ve2302, vek280" in lines[0]
    assert not (tmp_path / "b").exists()


def test_boards_listing_marks_the_reference_only_board(cli) -> None:
    r = cli("boards")
    row = next(line for line in r.out.splitlines() if "vck190" in line)
    assert "reference-only" in row
    assert "(default)" in next(line for line in r.out.splitlines() if "vek280" in line)


def test_fit_verdict_and_launch_advice(cli, model, tmp_path) -> None:
    out = tmp_path / "b"
    assert cli("compile", model, "-o", out).code == 0
    r = cli("report", out, "--json")
    d = json.loads(r.out)
    fit = d["fit"]
    # vek280's PL capacities are unknown: fit is unchecked for them, not claimed
    assert fit["fits"] is True and fit["over"] == []
    assert fit["unchecked"] == ["PL LUT", "PL FF", "PL BRAM", "PL URAM", "PL DSP"]
    assert "fit is unchecked for PL LUT" in fit["text"]
    # this small FFN is almost all launch overhead: the report says so and what helps
    (advice,) = d["advice"]
    assert "launch overhead" in advice and "batch" in advice and "one graph run" in advice
    assert "once per inference" in advice
    # one launch per inference, with Tempus's host flow (one launch per GEMM) beside it
    tot, ex = d["totals"], d["execution"]
    assert ex["launches_per_inference"] == 1 and ex["time_s"] == tot["time_s"]
    assert tot["per_launch_time_s"] == ex["per_launch_time_s"] > tot["time_s"]
    assert ex["per_launch_label"] == "Tempus's host flow: one launch per GEMM"
    text = cli("report", out).out
    assert "fit is unchecked" in text and "advice:" in text and "launch overhead" in text
    assert "one launch per GEMM" in text and "one graph run per inference" in text
    # compile's layer count is explained against the report's rows
    assert any("plan layers run as 6 hardware stages" in n for n in d["notes"])
    assert len(d["layers"]) == 6


def test_ve2302_fit_is_checked_everywhere(cli, model, tmp_path) -> None:
    out = tmp_path / "b"
    assert cli("compile", model, "--board", "ve2302", "-o", out).code == 0
    fit = json.loads(cli("report", out, "--json").out)["fit"]
    assert fit == {
        "fits": True,
        "over": [],
        "unchecked": [],
        "text": "fits ve2302 on every resource",
    }


def test_without_yosys_compile_warns_and_the_report_marks_pl(model, tmp_path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    out = tmp_path / "b"
    r = _run("compile", str(model), "-o", str(out), path=str(empty))
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "yosys" in r.stderr and "not synthesised" in r.stderr
    d = json.loads(_run("report", str(out), "--json", path=str(empty)).stdout)
    assert d["pl_synthesised"] is False
    pl = [x for x in d["resources"] if x["resource"].startswith("PL ")]
    assert pl and all(x["synthesised"] is False for x in pl)
    assert any("PL figures NOT synthesised" in n for n in d["notes"])
    text = _run("report", str(out), path=str(empty)).stdout
    assert "PL LUT (not synthesised)" in text
    # --no-synth is a choice, not a degradation: no warning (the report still marks the PL)
    r = _run("compile", str(model), "-o", str(tmp_path / "c"), "--no-synth", path=str(empty))
    assert r.returncode == 0 and "warning" not in r.stderr


def test_with_yosys_the_pl_figures_are_synthesised(cli, model, tmp_path) -> None:
    import shutil

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed")
    out = tmp_path / "b"
    r = cli("compile", model, "-o", out)
    assert r.code == 0 and "warning" not in r.err
    assert json.loads(cli("report", out, "--json").out)["pl_synthesised"] is True


def test_version(cli) -> None:
    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"codesign, version {__version__}"


def test_report_shows_build_options_inputs_version_and_simulation(cli, model, tmp_path) -> None:
    out = tmp_path / "b"
    assert cli("compile", model, "-o", out, "--solver-time-limit", "5").code == 0
    d = json.loads((out / "report" / "report.json").read_text())
    b = d["build"]
    assert b["codesign_version"] == __version__ and "numpy" in b["tools"]
    assert b["options"]["solver_time_limit"] == 5 and b["options"]["board"] == "vek280"
    assert b["inputs"] == [{"name": "input", "shape": [16, 64], "dtype": "float32"}]
    assert b["simulation"] is None
    page = (out / "report" / "report.html").read_text()
    assert "solver_time_limit=5" in page and "input 16x64 float32" in page
    assert "No simulation recorded" in page
    assert cli("simulate", out, "--reference").code == 0
    assert cli("report", out).code == 0
    d = json.loads((out / "report" / "report.json").read_text())
    sim = d["build"]["simulation"]
    assert sim["passed"] is True and sim["outputs"][0]["name"] == "output"
    assert d["build"]["options"]["solver_time_limit"] == 5  # read back from the manifest
    assert "numpy" in d["build"]["tools"]
    page = (out / "report" / "report.html").read_text()
    assert 'id="simulation"' in page and "Simulation against onnxruntime" in page


def test_demo_installs_yosys_or_says_so() -> None:
    script = (Path(__file__).parents[2] / "scripts" / "demo.sh").read_text()
    assert "command -v yosys" in script and "apt_install yosys" in script
    assert script.count("marked not synthesised") == 2  # both fallbacks say so


@pytest.mark.chromium
def test_real_build_page_lays_out_at_1400_px(cli, model, tmp_path) -> None:
    import shutil

    if shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    out = tmp_path / "b"
    assert cli("compile", model, "-o", out).code == 0
    assert cli("simulate", out, "--reference").code == 0
    assert cli("report", out).code == 0
    html = out / "report" / "report.html"
    cmd = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
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
    assert 'data-plots-rendered="3"' in dom
    assert 'data-overflowing="0"' in dom, dom[dom.index("data-overflowing-list") :][:300]
    assert 'id="simulation"' in dom and 'id="fit"' in dom and 'id="advice"' in dom
