"""Progress on compile stages and solves: shown with rich on a terminal, quiet otherwise
(issue 10 item 12)."""

from __future__ import annotations

import io

from rich.console import Console

import codesign.cli
from codesign import progress
from codesign.examples import models


def test_stage_is_a_no_op_without_a_display() -> None:
    progress.stage("nothing listens")  # must not raise or print


def test_display_lists_each_stage(tmp_path) -> None:
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=100)
    with progress.display(con, enabled=True):
        progress.stage("first")
        progress.stage("second")
    text = buf.getvalue()
    assert "first" in text and "second" in text
    buf2 = io.StringIO()
    with progress.display(Console(file=buf2, width=100), enabled=False):
        progress.stage("hidden")
    assert buf2.getvalue() == ""


def test_compile_shows_stages_and_solves_on_a_terminal(cli, tmp_path, monkeypatch) -> None:
    model = models.ffn_block(tmp_path / "ffn.onnx")
    buf = io.StringIO()
    monkeypatch.setattr(
        codesign.cli, "err_console", Console(file=buf, force_terminal=True, width=120)
    )
    r = cli("compile", model, "-o", tmp_path / "b", "--no-synth")
    assert r.code == 0, r.err
    text = buf.getvalue()
    for needle in ("importing ffn.onnx", "solving the tiling of 'fc0_matmul'", "writing the build"):
        assert needle in text, text


def test_compile_is_quiet_when_stderr_is_not_a_terminal(cli, tmp_path) -> None:
    model = models.ffn_block(tmp_path / "ffn.onnx")
    r = cli("compile", model, "-o", tmp_path / "b", "--no-synth")
    assert r.code == 0 and r.err == ""
