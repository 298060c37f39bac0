"""The examples CLI is a click command like ``codesign`` (issue 10 item 12)."""

from __future__ import annotations

import click
import onnx

from codesign.examples.__main__ import examples, main


def test_examples_cli_is_click_and_writes_the_model(tmp_path, capsys) -> None:
    assert isinstance(examples, click.Command)
    path = tmp_path / "m.onnx"
    assert main(["qdq_mlp", str(path), "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    onnx.checker.check_model(onnx.load(path))


def test_examples_cli_bad_name_is_one_line_exit_2(tmp_path, capsys) -> None:
    assert main(["nope", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'nope' is not one of" in err[0]
    assert not (tmp_path / "m.onnx").exists()
