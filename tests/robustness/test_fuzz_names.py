"""Fuzz names from strangers: node, tensor, op-type, model-folder and build names with rich
markup, newlines and control characters, unicode and long lengths. compile, simulate (with
--reference) and report must end with exit 0, or 2 with exactly one ``error:`` line, and no
name may print a line of its own (an ``error:`` line spoofed from data)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from codesign.sim import memory
from tests.robustness import harness

EXAMPLES = max(60, int(os.environ.get("CODESIGN_FUZZ_EXAMPLES", "0")) // 20)

PIECES = st.sampled_from(
    ["[/]", "[bold]", "[/bold]", "[red]x[/red]", "[link=file:///etc/passwd]", "\\[", "[", "]",
     "\n", "\r", "\nerror: spoofed", "\x1b[31m", "\t", "\x00", "\u2028", "é", "名", "/", ".", "..",
     " ", "%s", "{}", "{{x}}", "<script>", "&amp;"]
)  # fmt: skip
NAMES = st.one_of(
    st.lists(st.one_of(PIECES, st.text(max_size=4)), min_size=1, max_size=6).map("".join),
    st.integers(200, 400).map(lambda n: "n" * n),
    st.tuples(PIECES, st.integers(100, 300)).map(lambda t: t[0] + "x" * t[1]),
)
FOLDERS = NAMES.map(lambda s: s.replace("/", "_").replace("\x00", "_")).filter(
    lambda s: s not in ("", ".", "..")
)


def _model(path: Path, names: list[str], op_type: str) -> Path:
    x, w, mm, y = names
    weight = numpy_helper.from_array(np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4), w)
    nodes = [
        helper.make_node("MatMul", [x, w], [mm], name=f"{mm}_node"),
        helper.make_node(op_type, [mm], [y], name=f"{y}_node"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4])],
        initializer=[weight],
    )
    path.write_bytes(
        helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    return path


def _spoofed(outcome: harness.Outcome) -> str | None:
    """A printed line that data started: 'error:' anywhere but the one error line."""
    out_lines = outcome.out.splitlines()
    if any(line.lstrip().startswith("error:") for line in out_lines):
        return f"stdout of codesign {' '.join(outcome.args)} has an error: line: {outcome.out!r}"
    return None


def test_names_with_markup_newlines_and_lengths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available", lambda: (512 * 2**20, "the fuzz test's limit"))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize="CODESIGN_FUZZ_EXAMPLES" not in os.environ,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        names=st.lists(NAMES, min_size=4, max_size=4, unique=True),
        op_type=st.one_of(st.just("Relu"), NAMES),
        folder=FOLDERS,
        out=FOLDERS,
    )
    def one_case(names: list[str], op_type: str, folder: str, out: str) -> None:
        work = tmp_path / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            (work / folder).mkdir()
            model_dir = work / folder
        except OSError:  # a name the file system refuses (too long): the model stays outside
            model_dir = work
        model = _model(model_dir / "m.onnx", names, op_type)
        build = work / out
        outcomes = [harness.run_cli("compile", model, "-o", build, "--no-synth")]
        if outcomes[0].code == 0:
            outcomes += [
                harness.run_cli("simulate", build, "--reference"),
                harness.run_cli("report", build),
            ]
        failure = harness.verdict(outcomes)
        assert failure is None, failure
        for o in outcomes:
            spoof = _spoofed(o)
            assert spoof is None, spoof

    one_case()


def test_markup_names_compile_and_print(tmp_path: Path) -> None:
    """The names of issue 11 compile with exit 0 and print as written (escaped, not parsed)."""
    names = ["in[/]", "w[bold]", "mm[/]x", "out[red]y[/red]"]
    folder = tmp_path / "dir[/]x"  # the folders "dir[" and "]x": "[/]" in the path
    folder.mkdir(parents=True)
    model = _model(folder / "m.onnx", names, "Relu")
    build = tmp_path / "b[/]"  # "b[" and "]": "[/]" in the -o path
    r = harness.run_cli("compile", model, "-o", build, "--no-synth")
    assert r.code == 0, r.err
    assert "b[/]" in "".join(r.out.split())
    r = harness.run_cli("simulate", build)
    assert r.code == 0 and "out[red]y[/red]" in r.out, r.out
