"""``codesign inspect MODEL`` (issue 12 item 8): every node with where it would run, and every
blocker at once, grouped by op type, from the compile's own decision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.examples import models


def _several_unsupported(path: Path) -> Path:
    """MatMul -> Sin -> Cos -> TopK, a second Sin, and a Cast of a value with a bad scale
    refused by its lowering (a ModelError); names with rich markup in them."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w")
    k = numpy_helper.from_array(np.asarray([2], np.int64), "k")
    s = numpy_helper.from_array(np.asarray(-1.0, np.float32), "s")
    z = numpy_helper.from_array(np.asarray(0, np.int8), "z")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="/enc/fc/MatMul"),
        helper.make_node("Sin", ["a"], ["b"], name="/enc/[red]Sin[/red]"),
        helper.make_node("Cos", ["b"], ["c"], name="/enc/Cos"),
        helper.make_node("TopK", ["c", "k"], ["y", "idx"], name="/enc/TopK", axis=-1),
        helper.make_node("Sin", ["x"], ["d"], name="/enc/Sin_1"),
        helper.make_node("QuantizeLinear", ["d", "s", "z"], ["q"], name="/enc/q"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y2"], name="/enc/dq"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, [4, 2]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, [4, 8]),
        ],
        [w, k, s, z],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


def test_inspect_lists_every_blocker_as_json(cli, tmp_path: Path) -> None:
    model = _several_unsupported(tmp_path / "m.onnx")
    r = cli("inspect", model, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    units = {n["name"]: n["unit"] for n in data["nodes"]}
    assert units["/enc/fc/MatMul"] == "AIE"
    assert units["/enc/[red]Sin[/red]"] == units["/enc/Cos"] == units["/enc/TopK"] == "Host"
    assert units["/enc/Sin_1"] == "Host"
    # both quantisation nodes refuse the negative scale: reported, not the first one only
    assert units["/enc/q"] == "refused" and units["/enc/dq"] == "refused"
    assert sorted(data["blockers"]) == ["Cos", "DequantizeLinear", "QuantizeLinear", "Sin", "TopK"]
    assert sorted(e["name"] for e in data["blockers"]["Sin"]) == [
        "/enc/Sin_1",
        "/enc/[red]Sin[/red]",
    ]
    assert "finite and positive" in data["blockers"]["QuantizeLinear"][0]["reason"]
    assert data["summary"]["Host"] == 4 and data["summary"]["refused"] == 2


def test_inspect_text_is_escaped_and_fits_80_columns(cli, tmp_path: Path) -> None:
    model = _several_unsupported(tmp_path / "m.onnx")
    r = cli("inspect", model)
    assert r.code == 0, r.err
    assert "/enc/[red]Sin[/red]" in r.out  # shown as text, not taken as markup
    assert "blockers" in r.out and "refused" in r.out and "TopK" in r.out
    assert max(len(line) for line in r.out.splitlines()) <= 80


def test_inspect_is_the_compile_decision(cli, tmp_path: Path) -> None:
    """The nodes inspect puts on the Host are the nodes the compile's Host layers run."""
    model = models.unsupported_op_model(tmp_path / "u.onnx")
    data = json.loads(cli("inspect", model, "--json").out)
    build = codesign.compile(model, synth=False)
    compiled = [n for layer in build.plan.layers if layer.kind == "host" for n in layer.nodes]
    assert [n["name"] for n in data["nodes"] if n["unit"] == "Host"] == compiled
    assert data["host_partitions"] == 1


def test_inspect_of_a_supported_model_has_no_blockers(cli, tmp_path: Path) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")
    r = cli("inspect", model)
    assert r.code == 0 and "no blockers" in r.out
    assert json.loads(cli("inspect", model, "--json").out)["blockers"] == {}


def test_inspect_user_errors_are_one_line(cli, tmp_path: Path) -> None:
    r = cli("inspect", tmp_path / "missing.onnx")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "no such model" in r.err
    dyn = models.dynamic_dim_model(tmp_path / "d.onnx")
    r = cli("inspect", dyn)
    assert r.code == 2 and "--shape" in r.err
