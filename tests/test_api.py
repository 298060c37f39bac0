"""The Python API (codesign.compile / Build / load_build): the README's example runs, a saved
build equals the CLI's byte for byte, a ModelProto compiles, errors are the CLI's classes."""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

import codesign
from codesign.errors import BuildError, FitError, OptionError, UnsupportedError
from codesign.examples import models

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _same_tree(a: Path, b: Path) -> list[str]:
    """Paths that differ between two directories (missing on one side or other bytes)."""
    fa = {p.relative_to(a).as_posix() for p in a.rglob("*")}
    fb = {p.relative_to(b).as_posix() for p in b.rglob("*")}
    diff = sorted(fa ^ fb)
    for rel in sorted(fa & fb):
        if (a / rel).is_file() and not filecmp.cmp(a / rel, b / rel, shallow=False):
            diff.append(rel)
    return diff


def test_readme_example_runs_and_saves_what_the_cli_writes(tmp_path, monkeypatch, cli) -> None:
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), scope)
    assert scope["outputs"]["output"].shape == (1, 64)
    assert scope["report"]["modelled"] is True
    r = cli("compile", "model.onnx", "-o", "cli_build", "--shape", "input=1x128")
    assert r.code == 0, r.err
    assert _same_tree(tmp_path / "build", tmp_path / "cli_build") == []


def test_save_equals_cli_compile_without_synthesis(tmp_path, cli) -> None:
    model = models.ffn_block(tmp_path / "ffn.onnx")
    codesign.compile(model, synth=False, block=(1, 4)).save(tmp_path / "api")
    r = cli("compile", model, "-o", tmp_path / "cli", "--no-synth", "--block", "1x4")
    assert r.code == 0, r.err
    assert _same_tree(tmp_path / "api", tmp_path / "cli") == []
    # a loaded build saves the same files again
    codesign.load_build(tmp_path / "cli").save(tmp_path / "again")
    assert _same_tree(tmp_path / "again", tmp_path / "cli") == []


def test_model_proto_and_memory_equal_disk(tmp_path) -> None:
    path = models.qdq_mlp(tmp_path / "q.onnx")
    from_proto = codesign.compile(onnx.load(path), synth=False)
    from_path = codesign.compile(path, synth=False)
    assert from_proto.plan.layers == from_path.plan.layers
    assert from_proto.plan.data == from_path.plan.data
    outputs = from_path.simulate(seed=3)
    loaded = codesign.load_build(from_path.save(tmp_path / "b"))
    assert loaded.plan == from_path.plan
    again = loaded.simulate(seed=3)
    assert outputs.keys() == again.keys()
    for k in outputs:
        np.testing.assert_array_equal(outputs[k], again[k])
    assert loaded.report() == from_path.report()
    written = (tmp_path / "b" / "report" / "report.json").read_text()
    import json

    assert json.loads(written) == from_path.report()


def test_compile_writes_nothing_and_the_plan_travels(tmp_path, monkeypatch) -> None:
    import pickle

    model = models.float_mlp(tmp_path / "m.onnx")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    build = codesign.compile(model, synth=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # a pure plan can be sent to a worker: it pickles with its data and runs there the same
    plan = pickle.loads(pickle.dumps(build.plan))
    assert plan == build.plan and plan.data == build.plan.data
    again = codesign.Build(plan, build.options).simulate(seed=5)
    for k, v in build.simulate(seed=5).items():
        np.testing.assert_array_equal(again[k], v)


def test_errors_are_the_cli_classes(tmp_path) -> None:
    model = models.float_mlp(tmp_path / "m.onnx")
    with pytest.raises(OptionError, match="block"):
        codesign.compile(model, block="2y8")
    with pytest.raises(UnsupportedError, match="--strict"):
        codesign.compile(models.unsupported_op_model(tmp_path / "u.onnx"), strict=True)
    with pytest.raises(OptionError, match="path or an onnx.ModelProto"):
        codesign.compile(42)
    with pytest.raises(BuildError, match="not a codesign build"):
        codesign.load_build(tmp_path)
    build = codesign.compile(model, synth=False)
    build.save(tmp_path / "b")
    with pytest.raises(BuildError, match="already exists"):
        build.save(tmp_path / "b")
    build.save(tmp_path / "b", force=True)
    assert issubclass(FitError, codesign.errors.CodesignError)


def test_damaged_build_is_refused_by_load_and_simulate(tmp_path) -> None:
    model = models.float_mlp(tmp_path / "m.onnx")
    out = codesign.compile(model, synth=False).save(tmp_path / "b")
    weight = next((out / "weights").glob("*.B.bin"))
    weight.write_bytes(weight.read_bytes()[:-4])
    with pytest.raises(BuildError, match="must hold"):
        codesign.load_build(out)
    weight.write_bytes(b"\0" * (len(weight.read_bytes()) + 4))
    build = codesign.load_build(out)
    with pytest.raises(BuildError, match="sha256"):
        build.simulate()


def test_damaged_rtl_manifest_is_a_build_error(tmp_path, cli) -> None:
    model = models.float_mlp(tmp_path / "m.onnx")
    out = codesign.compile(model, synth=False).save(tmp_path / "b")
    (out / "rtl" / "manifest.json").write_text('{"blocks": [{"synth": {}}]}')
    with pytest.raises(BuildError, match="RTL manifest"):
        codesign.load_build(out).report()
    r = cli("report", out)
    assert r.code == 2 and "rtl" in r.err
