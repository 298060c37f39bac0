"""Tests for codesign.examples.models: every builder gives a valid, runnable, deterministic model.

The op-sequence tests pin what onnxruntime's quantizer emits, which the ONNX frontend relies on;
if an onnxruntime upgrade changes it, they say so here first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from codesign.errors import ModelError, OptionError
from codesign.examples import models as m

Builder = Callable[[Path, int], Path]

# id -> builder(path, seed); small sizes so the whole file stays fast.
BUILDERS: dict[str, Builder] = {
    "float_mlp": lambda p, s: m.float_mlp(p, seed=s),
    "float_mlp_gemm": lambda p, s: m.float_mlp(p, dims=(16, 32, 32, 8), seed=s, use_gemm=True),
    "float_mlp_reshape": lambda p, s: m.float_mlp_reshape(p, seed=s),
    "float_mlp_flatten": lambda p, s: m.float_mlp_reshape(p, seed=s, input_op="Flatten"),
    "qdq_mlp_int8": lambda p, s: m.qdq_mlp(p, seed=s),
    "qdq_mlp_uint8_pc": lambda p, s: m.qdq_mlp(
        p, seed=s, per_channel=True, activation_type="uint8"
    ),
    "qdq_mlp_gemm_pc": lambda p, s: m.qdq_mlp(p, seed=s, per_channel=True, use_gemm=True),
    "dynamic_mlp": lambda p, s: m.dynamic_mlp(p, seed=s),
    "dynamic_mlp_pc": lambda p, s: m.dynamic_mlp(p, seed=s, per_channel=True),
    "qlinear_matmul_uint8": lambda p, s: m.qlinear_matmul(p, 8, 64, 16, seed=s),
    "qlinear_matmul_int8": lambda p, s: m.qlinear_matmul(p, 8, 64, 16, seed=s, dtype="int8"),
    "qdq_gemm_int8": lambda p, s: m.qdq_gemm(p, 16, 64, 32, seed=s),
    "qdq_gemm_int16_pc": lambda p, s: m.qdq_gemm(p, 16, 64, 32, "int16", seed=s, per_channel=True),
    "qdq_gemm_int16x8": lambda p, s: m.qdq_gemm(p, 16, 64, 32, "int16", s, True, "int8"),
    "ffn_block": lambda p, s: m.ffn_block(p, seed=s),
    "ffn_block_float": lambda p, s: m.ffn_block(p, seed=s, quantize=False),
    "ffn_block_batched": lambda p, s: m.ffn_block(p, d_model=32, d_ff=64, seq=8, seed=s, batch=2),
    "unsupported_op_model": lambda p, s: m.unsupported_op_model(p, seed=s),
    "dynamic_dim_model": lambda p, s: m.dynamic_dim_model(p, seed=s),
}


def ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(path).graph.node]


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


# --------------------------------------------------------------------------------------------
# every builder: valid, runnable, deterministic


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builder_is_valid_runnable_and_deterministic(name: str, tmp_path: Path) -> None:
    build = BUILDERS[name]
    first = build(tmp_path / "a" / "model.onnx", 0)
    assert first == tmp_path / "a" / "model.onnx"
    model = onnx.load(first)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == m.IR_VERSION
    assert {(o.domain, o.version) for o in model.opset_import} == {("", m.OPSET)}
    assert [i.name for i in model.graph.input] == [m.INPUT_NAME]
    assert model.graph.output[0].name == m.OUTPUT_NAME

    feeds = m.random_inputs(first)
    outs = run(first, feeds)
    assert all(np.all(np.isfinite(o)) for o in outs if o.dtype.kind == "f")

    (tmp_path / "b").mkdir()
    second = build(tmp_path / "b", 0)  # an existing directory: the file is <dir>/model.onnx
    assert second == tmp_path / "b" / "model.onnx"
    assert first.read_bytes() == second.read_bytes()
    other_seed = build(tmp_path / "c.onnx", 1)
    assert other_seed.read_bytes() != first.read_bytes()
    # nothing but the models themselves is left behind
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "c.onnx",
        "model.onnx",
        "model.onnx",
    ]


def test_quantized_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """onnxruntime's quantizer iterates over sets; the bytes must not follow the hash seed."""
    script = (
        "import sys\n"
        "from codesign.examples import models as m\n"
        "m.qdq_mlp(sys.argv[1] + '/q.onnx', per_channel=True, activation_type='uint8')\n"
        "m.ffn_block(sys.argv[1] + '/f.onnx')\n"
        "m.dynamic_mlp(sys.argv[1] + '/d.onnx')\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env)
    here = tmp_path / "here"
    assert (
        m.qdq_mlp(here / "q.onnx", per_channel=True, activation_type="uint8").read_bytes()
        == (tmp_path / "q.onnx").read_bytes()
    )
    assert m.ffn_block(here / "f.onnx").read_bytes() == (tmp_path / "f.onnx").read_bytes()
    assert m.dynamic_mlp(here / "d.onnx").read_bytes() == (tmp_path / "d.onnx").read_bytes()


# --------------------------------------------------------------------------------------------
# float MLPs


def test_float_mlp_ops_and_variants_agree(tmp_path: Path) -> None:
    plain = m.float_mlp(tmp_path / "plain.onnx", dims=(16, 32, 24, 8))
    gemm = m.float_mlp(tmp_path / "gemm.onnx", dims=(16, 32, 24, 8), use_gemm=True)
    assert ops(plain) == ["MatMul", "Add", "Relu"] * 2 + ["MatMul", "Add"]
    assert ops(gemm) == ["Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    gemm_nodes = onnx.load(gemm).graph.node
    assert all(helper.get_attribute_value(n.attribute[0]) == 1 for n in gemm_nodes[::2])
    assert initializers(gemm)["fc0.weight"].shape == (32, 16)  # [N, K], transB=1

    feeds = m.random_inputs(plain)
    np.testing.assert_allclose(run(plain, feeds)[0], run(gemm, feeds)[0], rtol=1e-5, atol=1e-5)

    reshaped = m.float_mlp_reshape(tmp_path / "r.onnx", dims=(16, 32, 24, 8))
    flattened = m.float_mlp_reshape(tmp_path / "f.onnx", dims=(16, 32, 24, 8), input_op="Flatten")
    assert ops(reshaped)[:2] == ["Reshape", "MatMul"]
    assert ops(flattened)[:2] == ["Flatten", "MatMul"]
    x = m.random_inputs(reshaped)[m.INPUT_NAME]
    assert x.shape == (4, 4, 4)
    expected = run(plain, {m.INPUT_NAME: x.reshape(4, 16)})[0]
    np.testing.assert_allclose(run(reshaped, {m.INPUT_NAME: x})[0], expected, rtol=1e-6)
    np.testing.assert_allclose(run(flattened, {m.INPUT_NAME: x})[0], expected, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# onnxruntime-quantized models: pin the node sequences the frontend relies on

QDQ = ["QuantizeLinear", "DequantizeLinear"]
WEIGHT_DQ_2 = ["DequantizeLinear"] * 4  # fc0.bias, fc0.weight, fc1.bias, fc1.weight


def test_qdq_mlp_matmul_form(tmp_path: Path) -> None:
    for act in ("int8", "uint8"):
        for per_channel in (False, True):
            path = m.qdq_mlp(
                tmp_path / f"{act}{per_channel}.onnx", per_channel=per_channel, activation_type=act
            )
            layer = ["MatMul", *QDQ, "Add", *QDQ]
            assert ops(path) == WEIGHT_DQ_2 + QDQ + layer + layer  # Relu removed
            model = onnx.load(path)
            inits = initializers(path)
            qmin = np.iinfo(act).min
            # the removed Relu lives on as the zero point qmin of the first Add's output
            assert inits["fc0_relu_zero_point"] == qmin
            assert inits["input_zero_point"].dtype == np.dtype(act)
            assert inits["fc0.weight_quantized"].dtype == np.int8
            # the bias is an activation-typed DQ feeding a separate Add
            assert inits["fc0.bias_quantized"].dtype == np.dtype(act)
            assert inits["fc0.bias_scale"].shape == ()
            w_dq = next(n for n in model.graph.node if n.name == "fc0.weight_DequantizeLinear")
            if per_channel:
                assert inits["fc0.weight_scale"].shape == (32,)
                assert [(a.name, a.i) for a in w_dq.attribute] == [("axis", 1)]
            else:
                assert inits["fc0.weight_scale"].shape == ()
                assert list(w_dq.attribute) == []


def test_qdq_mlp_gemm_form_has_int32_bias(tmp_path: Path) -> None:
    path = m.qdq_mlp(tmp_path / "g.onnx", per_channel=True, use_gemm=True)
    assert ops(path) == WEIGHT_DQ_2 + QDQ + ["Gemm", *QDQ, "Gemm", *QDQ]
    inits = initializers(path)
    assert inits["fc0.bias_quantized"].dtype == np.int32
    np.testing.assert_allclose(
        inits["fc0.bias_quantized_scale"],
        inits["input_scale"] * inits["fc0.weight_scale"],
        rtol=1e-6,
    )
    nodes = {n.name: n for n in onnx.load(path).graph.node}
    assert [(a.name, a.i) for a in nodes["fc0.weight_DequantizeLinear"].attribute] == [("axis", 0)]
    assert [(a.name, a.i) for a in nodes["fc0.bias_DequantizeLinear"].attribute] == [("axis", 0)]


def test_qdq_mlp_tracks_float_model(tmp_path: Path) -> None:
    fp = m.float_mlp(tmp_path / "f.onnx")
    q = m.qdq_mlp(tmp_path / "q.onnx")
    feeds = m.random_inputs(fp)
    ref = run(fp, feeds)[0]
    assert np.abs(run(q, feeds)[0] - ref).max() < 0.1 * np.abs(ref).max()


def test_dynamic_mlp_ops(tmp_path: Path) -> None:
    path = m.dynamic_mlp(tmp_path / "d.onnx", dims=(16, 32, 24, 8), per_channel=True)
    layer = ["DynamicQuantizeLinear", "Mul", "MatMulInteger", "Cast", "Mul", "Add"]
    assert ops(path) == layer + ["Relu"] + layer + ["Relu"] + layer
    inits = initializers(path)
    assert inits["fc0.weight_quantized"].dtype == np.int8
    assert inits["fc0.weight_scale"].shape == (32,)
    assert inits["fc0.bias"].dtype == np.float32
    reduced = initializers(m.dynamic_mlp(tmp_path / "r.onnx", reduce_range=True))
    assert np.abs(reduced["fc0.weight_quantized"].astype(int)).max() <= 64


def test_ffn_block_ops(tmp_path: Path) -> None:
    path = m.ffn_block(tmp_path / "ffn.onnx")
    layer = ["MatMul", *QDQ, "Add", *QDQ]
    assert ops(path) == WEIGHT_DQ_2 + QDQ + layer + layer + ["Add", *QDQ]
    model = onnx.load(path)
    residual = next(n for n in model.graph.node if n.name == "residual_add")
    assert residual.input[1] == "input_DequantizeLinear_Output"
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert shape == [16, 64]
    batched = m.ffn_block(tmp_path / "b.onnx", batch=2, quantize=False)
    assert ops(batched) == ["MatMul", "Add", "Relu", "MatMul", "Add", "Add"]
    assert m.random_inputs(batched)[m.INPUT_NAME].shape == (2, 16, 64)


# --------------------------------------------------------------------------------------------
# hand-built quantized models: the ranges are used, not saturated


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinear_matmul_is_exact_and_spread(dtype: str, tmp_path: Path) -> None:
    path = m.qlinear_matmul(tmp_path / "q.onnx", 16, 256, 32, dtype=dtype)
    assert ops(path) == ["QLinearMatMul"]
    feeds = m.random_inputs(path)
    assert feeds[m.INPUT_NAME].dtype == np.dtype(dtype)
    (y,) = run(path, feeds)
    info = np.iinfo(dtype)
    assert y.dtype == np.dtype(dtype)
    assert np.mean((y == info.min) | (y == info.max)) < 0.01
    assert y.astype(np.float64).std() > 16
    inits = initializers(path)
    w = inits["weight"]
    # uint8 inputs get 7-bit weights by default (see the builder), int8 inputs full range
    assert np.abs(w.astype(int)).max() == (64 if dtype == "uint8" else 127)
    # bit-exact against the ONNX arithmetic: integer accumulate, one float rescale, round half
    # to even, saturate
    acc = (feeds[m.INPUT_NAME].astype(np.int64) - int(inits["input_zero_point"])) @ w.astype(
        np.int64
    )
    multiplier = inits["input_scale"] * inits["weight_scale"] / inits["output_scale"]
    expected = np.rint(acc * np.float32(multiplier)) + int(inits["output_zero_point"])
    np.testing.assert_array_equal(np.clip(expected, info.min, info.max), y)


@pytest.mark.parametrize(
    ("dtype", "weight_dtype", "per_channel"),
    [("int8", None, False), ("int8", None, True), ("int16", None, True), ("int16", "int8", False)],
)
def test_qdq_gemm_large_runs_unsaturated(
    dtype: str, weight_dtype: str | None, per_channel: bool, tmp_path: Path
) -> None:
    n = 1024
    path = m.qdq_gemm(tmp_path / "g.onnx", n, n, n, dtype, 0, per_channel, weight_dtype)  # type: ignore[arg-type]
    assert ops(path) == ["QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "MatMul", *QDQ]
    inits = initializers(path)
    assert inits["weight_quantized"].dtype == np.dtype(weight_dtype or dtype)
    assert inits["input_zero_point"].dtype == np.dtype(dtype)
    assert inits["weight_scale"].shape == ((n,) if per_channel else ())
    w_dq = onnx.load(path).graph.node[2]
    assert [(a.name, a.i) for a in w_dq.attribute] == ([("axis", 1)] if per_channel else [])
    (y,) = run(path, m.random_inputs(path))
    q = np.rint(y / inits["output_scale"])
    qmax = np.iinfo(dtype).max
    assert np.mean(np.abs(q) >= qmax) < 1e-3
    assert q.std() > qmax / 8


# --------------------------------------------------------------------------------------------
# inputs


def test_random_inputs_dtypes_ranges_and_symbolic_dims(tmp_path: Path) -> None:
    q = m.random_inputs(m.qlinear_matmul(tmp_path / "q.onnx", 64, 64, 4, dtype="int8"), seed=3)
    x = q[m.INPUT_NAME]
    assert x.shape == (64, 64) and x.dtype == np.int8
    assert x.min() == -128 and x.max() == 127
    dyn = m.dynamic_dim_model(tmp_path / "d.onnx")
    assert m.random_inputs(dyn)[m.INPUT_NAME].shape == (1, 16)
    feeds = m.random_inputs(dyn, dim_values={"batch": 5})
    assert feeds[m.INPUT_NAME].shape == (5, 16) and feeds[m.INPUT_NAME].dtype == np.float32
    assert run(dyn, feeds)[0].shape == (5, 8)
    a, b = m.random_inputs(dyn, seed=1), m.random_inputs(dyn, seed=1)
    np.testing.assert_array_equal(a[m.INPUT_NAME], b[m.INPUT_NAME])
    assert not np.array_equal(a[m.INPUT_NAME], m.random_inputs(dyn, seed=2)[m.INPUT_NAME])


def test_random_inputs_rejects_string_input(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["t"])],
        "strings",
        [helper.make_tensor_value_info("s", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("t", TensorProto.STRING, [2])],
    )
    path = tmp_path / "s.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelError, match="'s'"):
        m.random_inputs(path)


def test_save_inputs_roundtrip(tmp_path: Path) -> None:
    model = m.ffn_block(tmp_path / "ffn.onnx", quantize=False)
    npz = m.save_inputs(model, tmp_path / "in" / "x.npz", seed=4)
    with np.load(npz) as data:
        assert list(data.keys()) == [m.INPUT_NAME]
        np.testing.assert_array_equal(data[m.INPUT_NAME], m.random_inputs(model, 4)[m.INPUT_NAME])
    assert m.save_inputs(model, tmp_path / "in") == tmp_path / "in" / "inputs.npz"


# --------------------------------------------------------------------------------------------
# bad inputs


def test_bad_input_helpers(tmp_path: Path) -> None:
    unsupported = onnx.load(m.unsupported_op_model(tmp_path / "u.onnx"))
    topk = [n for n in unsupported.graph.node if n.op_type == m.UNSUPPORTED_OP_TYPE]
    assert [n.name for n in topk] == [m.UNSUPPORTED_NODE_NAME]

    dyn = onnx.load(m.dynamic_dim_model(tmp_path / "d.onnx"))
    assert dyn.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"

    src = m.float_mlp(tmp_path / "f.onnx")
    cut = m.truncated_model(src, tmp_path / "t.onnx")
    assert cut.stat().st_size == src.stat().st_size // 2
    assert src.read_bytes().startswith(cut.read_bytes())
    with pytest.raises(Exception):  # noqa: B017 - protobuf's DecodeError, whatever onnx wraps
        onnx.load(cut)

    text = m.not_onnx_file(tmp_path / "n.onnx")
    with pytest.raises(Exception):  # noqa: B017
        onnx.checker.check_model(onnx.load(text))


@pytest.mark.parametrize(
    "call",
    [
        lambda p: m.float_mlp(p, dims=(16,)),
        lambda p: m.float_mlp(p, dims=(16, 0)),
        lambda p: m.float_mlp(p, batch=0),
        lambda p: m.float_mlp(p, seed=-1),
        lambda p: m.float_mlp_reshape(p, input_shape=(3, 5)),
        lambda p: m.qdq_mlp(p, activation_type="int4"),
        lambda p: m.qdq_mlp(p, quant_format="QLinear"),
        lambda p: m.dynamic_mlp(p, weight_type="int16"),
        lambda p: m.qlinear_matmul(p, 4, 4, 4, dtype="int16"),
        lambda p: m.qdq_gemm(p, 4, 4, 4, dtype="uint8"),
        lambda p: m.ffn_block(p, d_model=0),
        lambda p: m.dynamic_dim_model(p, dim_param="2 x"),
    ],
)
def test_bad_arguments_raise_option_error_and_write_nothing(call, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="must be"):
        call(tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []
