"""Each canonicalisation rule on a tiny hand-built model: the expected op list after
canonicalisation, and onnxruntime's outputs before and after within float tolerance (in the
style of qonnx's transformation tests). Real exporters' output is in test_canonical_exporters.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

from codesign.errors import ModelError
from codesign.frontend.canonical import CANONICAL_OPSET, canonicalize
from codesign.frontend.load import load_model

SHAPE = [2, 4, 8]


def _model(nodes, inits=(), opset=18, extra_opsets=(), out_shape=None, in_shape=None):
    g = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, in_shape or SHAPE)],
        [h.make_tensor_value_info("y", T.FLOAT, out_shape or SHAPE)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
    )
    opsets = [h.make_opsetid("", opset), *(h.make_opsetid(d, v) for d, v in extra_opsets)]
    m = h.make_model(g, opset_imports=opsets)
    m.ir_version = 10
    onnx.checker.check_model(m)
    return m


def _c(name, value, dtype=np.float32):
    return (name, np.asarray(value, dtype=dtype))


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _canonical(model: onnx.ModelProto, tmp_path) -> onnx.ModelProto:
    """Through the load path (shape inference, canonicalisation, shape inference)."""
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return load_model(path)


def check_rule(model, ops, tmp_path, rtol=1e-5, atol=1e-5, shape=None) -> onnx.ModelProto:
    """The canonical model has exactly ``ops`` (in order) and computes what ``model`` does."""
    x = np.random.default_rng(0).standard_normal(shape or SHAPE).astype(np.float32) * 2
    out = _canonical(model, tmp_path)
    assert [n.op_type for n in out.graph.node] == ops
    assert {o.domain: o.version for o in out.opset_import}.get("", 0) >= CANONICAL_OPSET
    np.testing.assert_allclose(_run(out, x), _run(model, x), rtol=rtol, atol=atol)
    return out


# -- LayerNorm ---------------------------------------------------------------------------------


def _layernorm_nodes(square="pow", divide="div"):
    nodes = [
        h.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=1),
        h.make_node("Sub", ["x", "mean"], ["d"]),
        h.make_node("Pow", ["d", "two"], ["sq"])
        if square == "pow"
        else h.make_node("Mul", ["d", "d"], ["sq"]),
        h.make_node("ReduceMean", ["sq", "axes"], ["var"], keepdims=1),
        h.make_node("Add", ["var", "eps"], ["ve"]),
        h.make_node("Sqrt", ["ve"], ["std"]),
    ]
    if divide == "div":
        nodes.append(h.make_node("Div", ["d", "std"], ["n"]))
    else:
        nodes += [h.make_node("Reciprocal", ["std"], ["r"]), h.make_node("Mul", ["d", "r"], ["n"])]
    return nodes


LN_INITS = [
    _c("axes", [-1], np.int64),
    _c("two", 2.0),
    _c("eps", 1e-5),
    _c("gamma", np.linspace(0.5, 1.5, 8)),
    _c("beta", np.linspace(-1, 1, 8)),
]


@pytest.mark.parametrize("square", ["pow", "mul"])
@pytest.mark.parametrize("divide", ["div", "reciprocal"])
def test_decomposed_layernorm_fuses_with_scale_and_bias(square, divide, tmp_path) -> None:
    nodes = [
        *_layernorm_nodes(square, divide),
        h.make_node("Mul", ["n", "gamma"], ["s"]),
        h.make_node("Add", ["s", "beta"], ["y"]),
    ]
    out = check_rule(_model(nodes, LN_INITS), ["LayerNormalization"], tmp_path)
    (ln,) = out.graph.node
    attrs = {a.name: h.get_attribute_value(a) for a in ln.attribute}
    assert attrs["axis"] == -1 and math.isclose(attrs["epsilon"], 1e-5, rel_tol=1e-6)


def test_layernorm_with_scale_first_operand_fuses(tmp_path) -> None:
    nodes = [
        *_layernorm_nodes(),
        h.make_node("Mul", ["gamma", "n"], ["s"]),
        h.make_node("Add", ["beta", "s"], ["y"]),
    ]
    check_rule(_model(nodes, LN_INITS), ["LayerNormalization"], tmp_path)


def test_layernorm_over_another_axis_is_left_alone(tmp_path) -> None:
    inits = [("axes", np.asarray([1], np.int64)), *LN_INITS[1:]]
    nodes = [*_layernorm_nodes(), h.make_node("Identity", ["n"], ["y"])]
    out = _canonical(_model(nodes, inits), tmp_path)
    assert "LayerNormalization" not in {n.op_type for n in out.graph.node}


def test_activation_scale_is_not_folded_into_layernorm(tmp_path) -> None:
    """Mul by a tensor computed from x (not a per-feature constant) stays a Mul."""
    nodes = [*_layernorm_nodes(), h.make_node("Mul", ["n", "x"], ["y"])]
    check_rule(_model(nodes, LN_INITS), ["LayerNormalization", "Mul"], tmp_path)


# -- RMSNorm -----------------------------------------------------------------------------------

RMS_INITS = [
    _c("axes", [-1], np.int64),
    _c("two", 2.0),
    _c("one", 1.0),
    _c("eps", 1e-6),
    _c("w", np.linspace(0.5, 1.5, 8)),
]


@pytest.mark.parametrize("inverse", ["reciprocal", "div_one", "div_x", "pow"])
def test_rmsnorm_as_llama_exports_it_fuses(inverse, tmp_path) -> None:
    nodes = [
        h.make_node("Pow", ["x", "two"], ["sq"]),
        h.make_node("ReduceMean", ["sq", "axes"], ["ms"], keepdims=1),
        h.make_node("Add", ["ms", "eps"], ["me"]),
    ]
    if inverse == "pow":
        nodes += [
            h.make_node("Pow", ["me", "mhalf"], ["r"]),
            h.make_node("Mul", ["x", "r"], ["n"]),
        ]
    else:
        nodes.append(h.make_node("Sqrt", ["me"], ["rms"]))
        if inverse == "reciprocal":
            nodes += [
                h.make_node("Reciprocal", ["rms"], ["r"]),
                h.make_node("Mul", ["x", "r"], ["n"]),
            ]
        elif inverse == "div_one":
            nodes += [
                h.make_node("Div", ["one", "rms"], ["r"]),
                h.make_node("Mul", ["x", "r"], ["n"]),
            ]
        else:
            nodes.append(h.make_node("Div", ["x", "rms"], ["n"]))
    nodes.append(h.make_node("Mul", ["w", "n"], ["y"]))  # HF: self.weight * hidden_states
    out = check_rule(_model(nodes, [*RMS_INITS, _c("mhalf", -0.5)]), ["RMSNormalization"], tmp_path)
    scale = numpy_helper.to_array(
        next(t for t in out.graph.initializer if t.name == out.graph.node[0].input[1])
    )
    np.testing.assert_allclose(scale, np.linspace(0.5, 1.5, 8), rtol=1e-6)


def test_rmsnorm_with_a_wrong_exponent_is_left_alone(tmp_path) -> None:
    nodes = [
        h.make_node("Pow", ["x", "three"], ["sq"]),
        h.make_node("ReduceMean", ["sq", "axes"], ["ms"], keepdims=1),
        h.make_node("Add", ["ms", "eps"], ["me"]),
        h.make_node("Sqrt", ["me"], ["rms"]),
        h.make_node("Div", ["x", "rms"], ["y"]),
    ]
    out = _canonical(_model(nodes, [*RMS_INITS, _c("three", 3.0)]), tmp_path)
    assert "RMSNormalization" not in {n.op_type for n in out.graph.node}


# -- GELU --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 2])
@pytest.mark.parametrize("arg", ["div", "mul"])
def test_erf_gelu_fuses(order, arg, tmp_path) -> None:
    nodes = [
        h.make_node("Div", ["x", "sqrt2"], ["a"])
        if arg == "div"
        else h.make_node("Mul", ["x", "inv_sqrt2"], ["a"]),
        h.make_node("Erf", ["a"], ["e"]),
        h.make_node("Add", ["e", "one"], ["t"]),
    ]
    nodes += [
        [h.make_node("Mul", ["x", "half"], ["hx"]), h.make_node("Mul", ["hx", "t"], ["y"])],
        [h.make_node("Mul", ["x", "t"], ["xt"]), h.make_node("Mul", ["xt", "half"], ["y"])],
        [h.make_node("Mul", ["t", "half"], ["ht"]), h.make_node("Mul", ["x", "ht"], ["y"])],
    ][order]
    inits = [
        _c("sqrt2", math.sqrt(2)),
        _c("inv_sqrt2", 1 / math.sqrt(2)),
        _c("one", 1.0),
        _c("half", 0.5),
    ]
    out = check_rule(_model(nodes, inits), ["Gelu"], tmp_path)
    assert h.get_attribute_value(out.graph.node[0].attribute[0]) == b"none"


def _tanh_gelu_nodes(k=0.044715):
    return [
        h.make_node("Pow", ["x", "three"], ["c"]),
        h.make_node("Mul", ["c", "k"], ["kc"]),
        h.make_node("Add", ["x", "kc"], ["i"]),
        h.make_node("Mul", ["i", "s"], ["si"]),
        h.make_node("Tanh", ["si"], ["th"]),
        h.make_node("Add", ["th", "one"], ["t"]),
        h.make_node("Mul", ["x", "half"], ["hx"]),
        h.make_node("Mul", ["hx", "t"], ["y"]),
    ], [
        _c("three", 3.0),
        _c("k", k),
        _c("s", math.sqrt(2 / math.pi)),
        _c("one", 1.0),
        _c("half", 0.5),
    ]


def test_tanh_gelu_fuses(tmp_path) -> None:
    nodes, inits = _tanh_gelu_nodes()
    out = check_rule(_model(nodes, inits), ["Gelu"], tmp_path)
    assert h.get_attribute_value(out.graph.node[0].attribute[0]) == b"tanh"


def test_tanh_gelu_with_other_constants_is_left_alone(tmp_path) -> None:
    nodes, inits = _tanh_gelu_nodes(k=0.05)
    out = _canonical(_model(nodes, inits), tmp_path)
    assert "Gelu" not in {n.op_type for n in out.graph.node}


@pytest.mark.parametrize(
    ("op", "inputs", "approximate"),
    [("Gelu", ["x"], "none"), ("FastGelu", ["x"], "tanh"), ("FastGelu", ["x", "b"], "tanh")],
)
def test_microsoft_gelus_become_standard_gelu(op, inputs, approximate, tmp_path) -> None:
    nodes = [h.make_node(op, inputs, ["y"], domain="com.microsoft")]
    inits = [_c("b", np.linspace(-1, 1, 8))] if len(inputs) > 1 else []
    m = _model(nodes, inits, opset=18, extra_opsets=[("com.microsoft", 1)])
    out = check_rule(m, ["Add", "Gelu"] if len(inputs) > 1 else ["Gelu"], tmp_path, atol=1e-4)
    gelu = out.graph.node[-1]
    assert gelu.domain == "" and h.get_attribute_value(gelu.attribute[0]) == approximate.encode()


# -- folding, empty tensors, opset -------------------------------------------------------------


def test_shape_noise_folds_once_shapes_are_static(tmp_path) -> None:
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, ConstantOfShape -> Equal -> Where,
    Range and Cast: everything but the computation folds away."""
    nodes = [
        h.make_node("Shape", ["x"], ["shp"]),
        h.make_node("Gather", ["shp", "i0"], ["b"], axis=0),
        h.make_node("Unsqueeze", ["b", "ax0"], ["bu"]),
        h.make_node("Concat", ["bu", "m1"], ["target"], axis=0),
        h.make_node("Reshape", ["x", "target"], ["flat"]),
        h.make_node(
            "ConstantOfShape", ["shp"], ["ones"], value=h.make_tensor("v", T.INT64, [1], [1])
        ),
        h.make_node("Equal", ["ones", "m1"], ["eq"]),
        h.make_node("Cast", ["eq"], ["eqf"], to=T.FLOAT),
        h.make_node("Range", ["z", "n8", "one_i"], ["r"]),
        h.make_node("Cast", ["r"], ["rf"], to=T.FLOAT),
        h.make_node("IsNaN", ["rf"], ["nan"]),
        h.make_node("Where", ["nan", "zf", "rf"], ["pos"]),
        h.make_node("Add", ["x", "pos"], ["xp"]),
        h.make_node("Mul", ["xp", "eqf"], ["xm"]),
        h.make_node("Relu", ["xm"], ["y"]),
    ]
    inits = [
        _c("i0", 0, np.int64),
        _c("ax0", [0], np.int64),
        _c("m1", [-1], np.int64),
        _c("z", 0, np.int64),
        _c("n8", 8, np.int64),
        _c("one_i", 1, np.int64),
        _c("zf", 0.0),
    ]
    m = _model(nodes, inits)
    out = check_rule(m, ["Add", "Mul", "Relu"], tmp_path)
    assert not {"Shape", "ConstantOfShape", "Cast", "IsNaN", "Range", "Where"} & {
        n.op_type for n in out.graph.node
    }


def test_empty_tensors_fold_away(tmp_path) -> None:
    """A zero-length slice and a zero-length constant concatenated to x: legal ONNX, gone in
    the canonical model (before, the load path refused dimension 0)."""
    nodes = [
        h.make_node("Slice", ["x", "s0", "s0", "ax2"], ["empty"]),
        h.make_node("Concat", ["x", "empty", "zero_len"], ["c"], axis=2),
        h.make_node("Relu", ["c"], ["y"]),
    ]
    inits = [
        _c("s0", [0], np.int64),
        _c("ax2", [2], np.int64),
        ("zero_len", np.zeros((2, 4, 0), np.float32)),
    ]
    check_rule(_model(nodes, inits), ["Relu"], tmp_path)


def test_gather_elements_of_constants_folds_beyond_32_choices(tmp_path) -> None:
    """BERT's token-type ids: GatherElements of a [1, 512] buffer (onnx's reference evaluator
    fails on it)."""
    nodes = [
        h.make_node("GatherElements", ["buf", "idx"], ["g"], axis=1),
        h.make_node("Cast", ["g"], ["gf"], to=T.FLOAT),
        h.make_node("Add", ["x", "gf"], ["y"]),
    ]
    inits = [("buf", np.arange(512, dtype=np.int64)[None]), ("idx", np.arange(8)[None] * 3)]
    check_rule(
        _model(nodes, inits, in_shape=[1, 8], out_shape=[1, 8]), ["Add"], tmp_path, shape=[1, 8]
    )


def test_old_opset_is_converted_and_still_runs(tmp_path) -> None:
    """An opset-13 model (ReduceMean axes as an attribute) is raised to the canonical opset,
    and its decomposed LayerNorm fuses."""
    nodes = [
        h.make_node("ReduceMean", ["x"], ["mean"], axes=[-1]),
        h.make_node("Sub", ["x", "mean"], ["d"]),
        h.make_node("Mul", ["d", "d"], ["sq"]),
        h.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
        h.make_node("Add", ["var", "eps"], ["ve"]),
        h.make_node("Sqrt", ["ve"], ["std"]),
        h.make_node("Div", ["d", "std"], ["y"]),
    ]
    out = check_rule(_model(nodes, [_c("eps", 1e-5)], opset=13), ["LayerNormalization"], tmp_path)
    assert {o.domain: o.version for o in out.opset_import}[""] == CANONICAL_OPSET


def test_canonicalisation_failure_is_one_model_error_naming_the_file(monkeypatch) -> None:
    from codesign.frontend import canonical

    def boom(model) -> None:
        raise RuntimeError("evaluator\nexploded")

    monkeypatch.setattr(canonical, "_fold", boom)
    nodes = [h.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(
        ModelError,
        match=r"^where.onnx: canonicalisation \(constant folding\) "
        r"failed: evaluator exploded$",
    ):
        canonicalize(_model(nodes), "where.onnx")


def test_canonical_model_op_counts_are_stable_under_a_second_pass(tmp_path) -> None:
    """Canonicalising a canonical model changes nothing (a fixed point)."""
    nodes = [
        *_layernorm_nodes(),
        h.make_node("Mul", ["n", "gamma"], ["s"]),
        h.make_node("Add", ["s", "beta"], ["y"]),
    ]
    once = _canonical(_model(nodes, LN_INITS), tmp_path)
    twice = canonicalize(once)
    assert Counter(n.op_type for n in twice.graph.node) == Counter(
        n.op_type for n in once.graph.node
    )


@pytest.mark.parametrize("scale", [0.02, 3e34])
def test_nan_guard_on_a_dequantised_value_goes(scale, tmp_path) -> None:
    """quantize_static's form of torch's guard: Where(IsNaN(DQ(Q(Softmax(x)))), 0, DQ(...)).
    A dequantised int8 is finite, so the guard goes -- unless scale x the integer range could
    overflow float32 (3e34 x 2**32), where it stays."""
    nodes = [
        h.make_node("Softmax", ["x"], ["p"], axis=-1),
        h.make_node("QuantizeLinear", ["p", "s", "z"], ["q"]),
        h.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        h.make_node("IsNaN", ["d"], ["nan"]),
        h.make_node("Where", ["nan", "zero", "d"], ["y"]),
    ]
    inits = [_c("s", scale), _c("z", -128, np.int8), _c("zero", 0.0)]
    qdq = ["Softmax", "QuantizeLinear", "DequantizeLinear"]
    if scale < 1:
        check_rule(_model(nodes, inits), qdq, tmp_path)
    else:
        check_rule(_model(nodes, inits), [*qdq, "IsNaN", "Where"], tmp_path)


@pytest.mark.parametrize("mask", [-1e9, -np.inf])
def test_softmax_nan_guard_goes_only_when_constants_are_finite(mask, tmp_path) -> None:
    """torch's attention export: Where(IsNaN(Softmax(s)), 0, Softmax(s)). With finite masks no
    row can be NaN and the guard goes; with a -inf mask (a fully masked row is NaN) it stays."""
    nodes = [
        h.make_node("Add", ["x", "mask"], ["s"]),
        h.make_node("Softmax", ["s"], ["p"], axis=-1),
        h.make_node("IsNaN", ["p"], ["nan"]),
        h.make_node("Where", ["nan", "zero", "p"], ["y"]),
    ]
    m = np.zeros(SHAPE, np.float32)
    m[0, 1, :] = mask  # one fully masked row
    m[1, :, 3] = mask
    inits = [("mask", m), _c("zero", 0.0)]
    if np.isfinite(mask):
        check_rule(_model(nodes, inits), ["Add", "Softmax"], tmp_path)
    else:
        check_rule(_model(nodes, inits), ["Add", "Softmax", "IsNaN", "Where"], tmp_path)
