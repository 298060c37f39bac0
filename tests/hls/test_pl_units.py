"""The PL units of the transpose, movement, nonlinear and rownorm kinds: every layer of these
kinds that runs on the PL gets ``hls/<ident>.h``, compiles with g++ -Wall -Werror and equals the
simulator bit for bit in ``check_hls`` (one row per layer, part ``pl:<kind>[:<fn>]``); layers
placed on the AIE get no PL code; a wrong tensor is a mismatch; builds stay byte-identical."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.codegen.vitis import golden_inputs
from codesign.examples import models, nonlinear_models
from codesign.examples.models import _make_model, _save
from codesign.hls import pl
from codesign.hls.check import check_hls, unit_part
from codesign.sim.functional import Simulator
from tests.hls.conftest import needs_gxx

pytestmark = [pytest.mark.gxx, needs_gxx]

UNIT_KINDS = ("transpose", "movement", "nonlinear", "rownorm")


def _movers(path):
    """Transpose, uneven Split, Concat on a middle axis, Gather with negative 2-D indices, a
    stepped Slice and Expand, around nothing but data movement."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(np.asarray([[0, -1], [3, -4]], np.int64), "ids"),
        numpy_helper.from_array(np.asarray([1, 2, 2], np.int64), "parts"),
        numpy_helper.from_array(np.asarray([1, 0], np.int64), "starts"),
        numpy_helper.from_array(np.asarray([6, 8], np.int64), "ends"),
        numpy_helper.from_array(np.asarray([0, 2], np.int64), "axes"),
        numpy_helper.from_array(np.asarray([2, 3], np.int64), "steps"),
        numpy_helper.from_array(np.asarray([3, 1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(rng.standard_normal((6, 5, 8)).astype(np.float32), "table"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 2, 0], name="t"),  # [6, 8, 5]
        helper.make_node("Transpose", ["table"], ["table_t"], perm=[0, 2, 1], name="tt"),
        helper.make_node("Split", ["t", "parts"], ["s0", "s1", "s2"], axis=2, name="split"),
        helper.make_node("Concat", ["s2", "s0", "table_t"], ["c"], axis=2, name="cat"),
        helper.make_node("Gather", ["c", "ids"], ["g"], axis=1, name="gather"),  # [6, 2, 2, 8]
        helper.make_node("Slice", ["c", "starts", "ends", "axes", "steps"], ["sl"], name="slice"),
        helper.make_node("Expand", ["sl", "shape"], ["e"], name="expand"),
    ]
    graph = helper.make_graph(
        nodes,
        "movers",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 6, 8])],
        [
            helper.make_tensor_value_info("g", TensorProto.FLOAT, [6, 2, 2, 8]),
            helper.make_tensor_value_info("e", TensorProto.FLOAT, [3, 3, 8, 3]),
            helper.make_tensor_value_info("s1", TensorProto.FLOAT, [6, 8, 2]),
        ],
        inits,
    )
    return _save(_make_model(graph), path)


def _all_on_pl(monkeypatch):
    """Every nonlinear and rownorm layer placed on the PL (the cost model would put some on
    the AIE): what the PL units must then compute."""
    import codesign.kinds.nonlinear as nonlinear
    import codesign.kinds.rownorm as rownorm

    monkeypatch.setattr(nonlinear, "place", lambda *a, **k: "pl")
    monkeypatch.setattr(rownorm, "place", lambda *a, **k: "pl")


def _functions(path):
    """The element-wise and row functions not in the masked-norm block: Exp, Reciprocal, GELU
    (tanh form), SiLU, Equal/Not, Where with -inf, Softmax (golden inputs: random int64 masks), RMSNorm."""
    inits = [
        numpy_helper.from_array(np.asarray(-np.inf, np.float32), "ninf"),
        numpy_helper.from_array(np.asarray(0, np.int64), "zero"),
        numpy_helper.from_array(np.asarray([-1], np.int64), "last"),
        numpy_helper.from_array(np.asarray(1e-6, np.float32), "eps"),
        numpy_helper.from_array(np.linspace(0.5, 1.5, 24).astype(np.float32), "gamma"),
    ]
    nodes = [
        helper.make_node("Exp", ["x"], ["e"], name="exp"),
        helper.make_node("Reciprocal", ["e"], ["r"], name="recip"),
        helper.make_node("Gelu", ["x"], ["g"], approximate="tanh", name="gelu_t"),
        helper.make_node("Sigmoid", ["x"], ["sg"], name="sig"),
        helper.make_node("Mul", ["x", "sg"], ["silu"], name="silu"),
        helper.make_node("Equal", ["m", "zero"], ["pad"], name="eq"),
        helper.make_node("Not", ["pad"], ["nm"], name="not"),
        helper.make_node("Where", ["nm", "ninf", "x"], ["w"], name="where"),
        helper.make_node("Softmax", ["w"], ["p"], axis=-1, name="sm"),
        helper.make_node("Add", ["r", "g"], ["a"], name="add"),
        helper.make_node("Add", ["a", "silu"], ["y0"], name="add2"),
        # HF Llama's RMSNorm, x / sqrt(mean(x^2) + eps) * gamma: fused to RMSNormalization
        helper.make_node("Mul", ["x", "x"], ["x2"], name="sq"),
        helper.make_node("ReduceMean", ["x2", "last"], ["ms"], keepdims=1, name="ms"),
        helper.make_node("Add", ["ms", "eps"], ["v"], name="v"),
        helper.make_node("Sqrt", ["v"], ["sd"], name="sd"),
        helper.make_node("Div", ["x", "sd"], ["rn"], name="rn"),
        helper.make_node("Mul", ["rn", "gamma"], ["rms"], name="rms"),
        helper.make_node("Add", ["y0", "rms"], ["y"], name="add3"),
    ]
    graph = helper.make_graph(
        nodes,
        "functions",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 24]),
            helper.make_tensor_value_info("m", TensorProto.INT64, [4, 24]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 24]),
            helper.make_tensor_value_info("p", TensorProto.FLOAT, [4, 24]),
        ],
        inits,
    )
    return _save(_make_model(graph), path)


def _compiled(tmp_path, make):
    path = make(tmp_path / "m.onnx")
    build = codesign.compile(str(path), board="vek280", block="2x8", synth=False)
    root = tmp_path / "b"
    build.save(root)
    return root, build


def _rows(root, build, tensors=None):
    if tensors is None:
        tensors = Simulator(build.plan).run_all(golden_inputs(build.plan))
    return {(r.layer, r.part): r for r in check_hls(root, build.plan, tensors)}


def _pl_units(build):
    return [
        (i, layer)
        for i, layer in enumerate(build.plan.layers)
        if layer.kind in UNIT_KINDS and layer.unit == "pl"
    ]


def _assert_units_match(root, build, rows):
    units = _pl_units(build)
    assert units
    for i, layer in units:
        assert (root / "hls" / f"{pl.ident(i, layer.name)}.h").is_file(), layer.name
        row = rows[(layer.name, unit_part(layer))]
        assert row.compiled and row.matched, row
    return units


def test_movers_match_the_simulator(tmp_path):
    root, build = _compiled(tmp_path, _movers)
    rows = _rows(root, build)
    units = _assert_units_match(root, build, rows)
    parts = {unit_part(layer) for _, layer in units}
    assert parts >= {
        "pl:transpose",
        "pl:movement:slice",
        "pl:movement:concat",
        "pl:movement:gather",
        "pl:movement:expand",
    }, parts
    # Split is one slice per output; nothing else runs, so the whole kernel matches too
    assert sum(layer.fn == "slice" for _, layer in units if layer.kind == "movement") >= 3
    assert rows[("(sequencer)", "pl:sequencer")].matched, rows[("(sequencer)", "pl:sequencer")]


def test_movement_block_matches_the_simulator(tmp_path):
    root, build = _compiled(tmp_path, models.movement_block)
    rows = _rows(root, build)
    units = _assert_units_match(root, build, rows)
    assert {layer.fn for _, layer in units} >= {"slice", "concat", "gather", "expand"}
    assert all(r.matched for r in rows.values()), [r for r in rows.values() if not r.matched]


def test_nonlinear_units_on_the_pl_match_the_simulator(tmp_path, monkeypatch):
    _all_on_pl(monkeypatch)
    for name, make in (("block", nonlinear_models.masked_norm_block), ("fns", _functions)):
        root, build = _compiled(tmp_path / name, make)
        assert (root / "hls" / "nl_math.h").is_file()
        rows = _rows(root, build)
        units = _assert_units_match(root, build, rows)
        fns = {layer.fn for _, layer in units}
        want = {
            "block": {"layernorm", "gelu", "erf", "tanh", "pow", "sqrt", "div", "neg"},
            "fns": {"exp", "reciprocal", "gelu", "sigmoid", "not", "where", "softmax", "rmsnorm"},
        }[name]
        assert fns >= want | ({"softmax", "reducemean", "equal"} if name == "block" else set())
        assert rows[("(sequencer)", "pl:sequencer")].matched


def test_aie_placed_layers_get_no_pl_code(tmp_path, monkeypatch):
    import codesign.kinds.nonlinear as nonlinear
    import codesign.kinds.rownorm as rownorm

    monkeypatch.setattr(nonlinear, "place", lambda *a, **k: "aie")
    monkeypatch.setattr(rownorm, "place", lambda *a, **k: "aie")
    root, build = _compiled(tmp_path, nonlinear_models.masked_norm_block)
    seq = (root / "hls" / "codesign_pl.cpp").read_text()
    for i, layer in enumerate(build.plan.layers):
        if layer.kind in ("nonlinear", "rownorm"):
            assert layer.unit == "aie"
            p = pl.ident(i, layer.name)
            # no PL unit: the step streams the layer through the AIE block, or is refused
            assert f"{p}_run(arena);" not in seq
            refused = f'#error "layer {layer.name} (kind {layer.kind})' in seq
            assert f"{p}_run(arena, " in seq or refused
    assert not (root / "hls" / "nl_math.h").exists()


def test_a_wrong_tensor_is_a_mismatch_of_the_unit(tmp_path, monkeypatch):
    _all_on_pl(monkeypatch)
    root, build = _compiled(tmp_path, nonlinear_models.masked_norm_block)
    tensors = Simulator(build.plan).run_all(golden_inputs(build.plan))
    sm = next(layer for layer in build.plan.layers if getattr(layer, "fn", "") == "softmax")
    y = tensors[sm.outputs[0]].copy()
    y.reshape(-1)[5] = np.nextafter(y.reshape(-1)[5], np.float32(2))  # one ulp
    tensors[sm.outputs[0]] = y
    rows = _rows(root, build, tensors)
    assert not rows[(sm.name, "pl:rownorm:softmax")].matched
    assert "first difference" in rows[(sm.name, "pl:rownorm:softmax")].detail
    # a broken mover is a mismatch of its own row
    copy = tmp_path / "c"
    shutil.copytree(root, copy)
    root2, build2 = _compiled(tmp_path / "mv", _movers)
    gi, gather = next(
        (i, layer)
        for i, layer in enumerate(build2.plan.layers)
        if getattr(layer, "fn", "") == "gather"
    )
    header = root2 / "hls" / f"{pl.ident(gi, gather.name)}.h"
    text = header.read_text()
    assert "if (k < 0) k += 8;" in text
    header.write_text(text.replace("if (k < 0) k += 8;", "if (k < 0) k += 7;"))
    rows = _rows(root2, build2)
    assert rows[(gather.name, "pl:movement:gather")].compiled
    assert not rows[(gather.name, "pl:movement:gather")].matched


def test_compiling_twice_gives_identical_units(tmp_path, monkeypatch):
    _all_on_pl(monkeypatch)
    digests = []
    for k in range(2):
        root, _ = _compiled(tmp_path / str(k), _functions)
        files = sorted((root / "hls").glob("*"))
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
    assert digests[0] == digests[1]
    assert any(name.startswith("l") and "sm" in name for name in digests[0])
