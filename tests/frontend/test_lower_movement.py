"""Data movement (Slice, Split, Concat, Gather, Expand): lowering to the movement kind, the
simulator against onnxruntime (exact: nothing is computed), the view/copy cost, folding of
movements over constants, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

import codesign
from codesign.cost.movement import is_view_slice, movement_traffic
from codesign.errors import BuildError, ModelError
from codesign.examples import models
from codesign.frontend import import_model
from codesign.frontend.reference import run_onnxruntime
from codesign.ir.graph import KernelGraph, TensorType
from codesign.kinds.movement import Movement
from codesign.passes.fold import fold_constants

INT64_MAX = 2**63 - 1


def _save(tmp_path, nodes, inputs, out_shape, inits=(), name="m.onnx"):
    g = h.make_graph(
        nodes,
        "g",
        inputs,
        [h.make_tensor_value_info("y", T.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
    )
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.checker.check_model(m)
    path = tmp_path / name
    onnx.save(m, path)
    return path


def _x(shape):
    return [h.make_tensor_value_info("x", T.FLOAT, shape)]


def _i64(*v):
    return np.asarray(v, np.int64)


def _exact(path, feeds) -> codesign.Build:
    """Compile, simulate, and require onnxruntime's outputs bit for bit."""
    build = codesign.compile(path, synth=False)
    got = build.simulate(feeds)
    want = run_onnxruntime(path, feeds)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)
    return build


def _kinds(build) -> list[tuple[str, str]]:
    return [(layer.kind, getattr(layer, "fn", "")) for layer in build.plan.layers]


def test_movement_only_block_is_exact(tmp_path) -> None:
    nodes = [
        h.make_node("Split", ["x"], ["q", "k", "v"], axis=-1, num_outputs=3),
        h.make_node("Add", ["q", "k"], ["qk"]),
        h.make_node("Concat", ["qk", "v"], ["c"], axis=-1),
        h.make_node("Slice", ["c", "s", "e", "a", "st"], ["sl"]),
        h.make_node("Gather", ["sl", "tok"], ["g"], axis=1),
        h.make_node("Expand", ["g", "shape"], ["y"]),
    ]
    inits = [
        ("s", _i64(1)),
        ("e", _i64(INT64_MAX)),
        ("a", _i64(1)),
        ("st", _i64(3)),
        ("tok", _i64(0, -1)),
        ("shape", _i64(3, 1, 1)),
    ]
    path = _save(tmp_path, nodes, _x([1, 10, 12]), [3, 2, 8], inits)
    x = np.random.default_rng(0).standard_normal((1, 10, 12)).astype(np.float32)
    build = _exact(path, {"x": x})
    assert _kinds(build) == [
        ("movement", "slice"),
        ("movement", "slice"),
        ("movement", "slice"),
        ("vector", "add"),
        ("movement", "concat"),
        ("movement", "slice"),
        ("movement", "gather"),
        ("movement", "expand"),
    ]


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps", "out"),
    [
        ((-3,), (INT64_MAX,), (2,), (1,), [2, 5, 3]),  # negative start, end clamped
        ((1, 0), (-1, 6), (1, 2), (2, 4), [2, 2, 2]),  # two axes, strided
        ((0,), (1,), (0,), (1,), [1, 5, 6]),  # the leading axis: a view
        ((-100,), (2,), (-2,), (1,), [2, 2, 6]),  # start clamped to 0, negative axis
    ],
)
def test_slice_forms_are_exact(starts, ends, axes, steps, out, tmp_path) -> None:
    nodes = [
        h.make_node("Slice", ["x", "s", "e", "a", "st"], ["sl"]),
        h.make_node("Relu", ["sl"], ["y"]),
    ]
    inits = [("s", _i64(*starts)), ("e", _i64(*ends)), ("a", _i64(*axes)), ("st", _i64(*steps))]
    path = _save(tmp_path, nodes, _x([2, 5, 6]), out, inits)
    x = np.random.default_rng(1).standard_normal((2, 5, 6)).astype(np.float32)
    _exact(path, {"x": x})


def test_embedding_lookup_is_exact_and_bad_ids_are_refused(tmp_path) -> None:
    table = np.random.default_rng(2).standard_normal((50, 8)).astype(np.float32)
    nodes = [
        h.make_node("Gather", ["table", "ids"], ["e"]),
        h.make_node("Add", ["e", "pos"], ["y"]),
    ]
    inits = [("table", table), ("pos", np.linspace(0, 1, 32, dtype=np.float32).reshape(4, 8))]
    ids_in = [h.make_tensor_value_info("ids", T.INT64, [1, 4])]
    path = _save(tmp_path, nodes, ids_in, [1, 4, 8], inits)
    build = _exact(path, {"ids": _i64(3, 0, 49, -1).reshape(1, 4)})
    assert _kinds(build) == [("movement", "gather"), ("vector", "add")]
    with pytest.raises(ModelError, match=r"layer '.*': gather indices must lie in \[-50, 50\)"):
        build.simulate({"ids": _i64(3, 0, 50, 1).reshape(1, 4)})
    # random inputs (simulate without inputs) draw ids inside the table
    ids = codesign.api.random_inputs(build.plan, seed=5)["ids"]
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 50
    assert next(iter(build.simulate().values())).shape == (1, 4, 8)


def test_example_movement_block_round_trips_through_a_build(tmp_path) -> None:
    path = models.movement_block(tmp_path / "mb.onnx")
    build = codesign.compile(path, synth=False)
    x = np.random.default_rng(3).standard_normal((1, 8, 16)).astype(np.float32)
    (got,) = build.simulate({"input": x}).values()
    (want,) = run_onnxruntime(path, {"input": x}).values()
    np.testing.assert_allclose(got, want, rtol=0.05, atol=0.05)  # the bf16 GEMM
    out = build.save(tmp_path / "b")
    loaded = codesign.load_build(out)
    np.testing.assert_array_equal(next(iter(loaded.simulate({"input": x}).values())), got)
    # a damaged slice is refused when the build is read
    plan = json.loads((out / "schedule.json").read_text())
    layer = next(x for x in plan["layers"] if x.get("fn") == "slice")
    layer["starts"] = [0, 0, 10**6]
    (out / "schedule.json").write_text(json.dumps(plan))
    with pytest.raises(BuildError, match="slice start 1000000"):
        codesign.load_build(out)


def test_view_costs_nothing_and_copies_stream_their_bytes(tmp_path) -> None:
    # a slice of the leading axis is one contiguous run; of the last axis it is a copy
    assert is_view_slice((1, 16, 96), (1, 4, 96), (1, 1, 1))
    assert is_view_slice((4, 16), (2, 16), (1, 1))
    assert not is_view_slice((1, 16, 96), (1, 16, 32), (1, 1, 1))
    assert not is_view_slice((2, 16), (2, 8), (1, 1))
    assert not is_view_slice((16, 4), (8, 4), (2, 1))
    t = movement_traffic("slice", [(16, 96)], [16 * 96 * 4], (16, 32), 16 * 32 * 4, steps=(1, 1))
    assert (t.bytes_read, t.bytes_written, t.view) == (2048, 2048, False)
    t = movement_traffic("gather", [(30522, 768), (1, 128)], [0, 1024], (1, 128, 768), 393216)
    assert t.bytes_read == 1024 + 393216  # the ids and the selected rows, not the table
    assert movement_traffic("concat", [(2,), (3,)], [8, 12], (5,), 20).bytes_read == 20
    assert movement_traffic("expand", [(1, 4)], [16], (8, 4), 128).bytes_read == 16

    nodes = [
        h.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2),  # leading: views
        h.make_node("Split", ["a"], ["c", "d"], axis=2, num_outputs=2),  # last axis: copies
        h.make_node("Add", ["c", "d"], ["cd"]),
        h.make_node("Slice", ["b", "s", "e", "a2"], ["b2"]),
        h.make_node("Add", ["cd", "b2"], ["y"]),
    ]
    inits = [("s", _i64(0)), ("e", _i64(2)), ("a2", _i64(2))]
    path = _save(tmp_path, nodes, _x([1, 8, 4]), [1, 4, 2], inits)
    report = codesign.compile(path, synth=False).report()
    staged = {e["name"]: e for e in report["layers"]}
    moves = [e for e in report["layers"] if str(e.get("kind", "")).startswith("movement")]
    assert len(moves) == 3  # the two last-axis halves of a, the column slice of b
    assert all(e["time_s"] > 0 and e["ddr_bytes"] > 0 for e in moves)
    assert not any(name.endswith("/a") or name.endswith("/b") for name in staged)


def test_movement_over_constants_folds() -> None:
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types["x"] = TensorType((2, 3), "float32")
    kg.constants["w"] = np.arange(12, dtype=np.float32).reshape(2, 6)
    kg.types["w"] = TensorType((2, 6), "float32")
    kg.types["w1"] = TensorType((2, 3), "float32")
    kg.types["y"] = TensorType((2, 3), "float32")
    from codesign.ir.graph import Vector

    kg.append(Movement("s", ("w",), ("w1",), fn="slice", starts=(0, 3), steps=(1, 1)))
    kg.append(Vector("add", ("x", "w1"), ("y",), fn="add"))
    assert fold_constants(kg)
    assert [type(op).__name__ for op in kg.ops] == ["Vector"]
    np.testing.assert_array_equal(kg.constants["w1"], [[3, 4, 5], [9, 10, 11]])


def test_reversing_slice_goes_to_the_host_with_its_reason(tmp_path) -> None:
    """The accelerator refuses a negative step; the node runs in a Host partition, and the
    refusal is the reason the report and `codesign inspect` show."""
    from codesign.ir.host import Host

    nodes = [h.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])]
    inits = [("s", _i64(-1)), ("e", _i64(-INT64_MAX)), ("a", _i64(1)), ("st", _i64(-1))]
    path = _save(tmp_path, nodes, _x([2, 4]), [2, 4], inits)
    hosts = [op for op in import_model(path).ops if isinstance(op, Host)]
    assert len(hosts) == 1 and "Slice steps must be positive, not -1" in hosts[0].reasons[0]
