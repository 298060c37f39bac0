"""Every command's tables are readable at 80 columns and when output goes to a file or CI log:
no cell is cut with an ellipsis (issue 10 item 9). Runs the real CLI in a subprocess, stdout
a pipe (not a terminal), COLUMNS=80."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codesign.examples import models


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", **(env_extra or {})}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "codesign", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("w80")
    model = models.ffn_block(d / "ffn.onnx")
    out = d / "build"
    r = _run("compile", str(model), "-o", str(out))
    assert r.returncode == 0, r.stderr
    return out


def _assert_readable(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    assert "…" not in text, text
    # rich wraps at the console width: no table line wider than 80 columns (stderr may carry
    # a simulator's own log lines, which are not ours to wrap)
    assert max(len(line) for line in r.stdout.splitlines()) <= 80, r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("report", "{build}"),
        ("report", "{build}", "--wide"),
        ("simulate", "{build}", "--reference"),
        ("simulate", "{build}", "--reference", "--wide"),
        ("estimate", "--gemm", "512x512x512"),
        ("estimate", "--gemm", "1024x1024x1024", "--board", "ve2302", "--dtype", "int16"),
        ("boards",),
        ("boards", "--wide"),
        ("boards", "vek280"),
        ("boards", "vck190"),
    ],
)
def test_no_truncated_cell_at_80_columns(build: Path, args: tuple[str, ...]) -> None:
    _assert_readable(_run(*(a.format(build=build) for a in args)))


def test_compile_summary_at_80_columns(tmp_path: Path) -> None:
    model = models.ffn_block(tmp_path / "ffn.onnx")
    _assert_readable(_run("compile", str(model), "-o", str(tmp_path / "b")))


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="icarus verilog not installed")
@pytest.mark.parametrize("wide", [False, True])
def test_verify_at_80_columns(wide: bool) -> None:
    _assert_readable(_run("verify", "broadcaster", "-n", "2", *(["--wide"] if wide else [])))


def test_default_report_has_fewer_columns_and_wide_all(build: Path) -> None:
    narrow = _run("report", str(build)).stdout
    wide = _run("report", str(build), "--wide").stdout

    def columns(text: str) -> int:  # of the first table (the layers): its top border
        top = next(line for line in text.splitlines() if line.startswith("┏"))
        return top.count("┳") + 1

    assert columns(narrow) == 7 and "--wide" in narrow
    assert columns(wide) == 15
