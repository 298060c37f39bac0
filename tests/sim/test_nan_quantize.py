"""NaN and infinite inputs to quantize (issue 11 item 16): defined by the numerics package and
equal to onnxruntime's QuantizeLinear / DynamicQuantizeLinear, instead of numpy's undefined
NaN-to-integer cast (which gave 0 where onnxruntime gives -128 for int8)."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from codesign.sim import numerics as n

_ONNX = {
    "int8": TensorProto.INT8,
    "uint8": TensorProto.UINT8,
    "int16": TensorProto.INT16,
    "uint16": TensorProto.UINT16,
}
SPECIAL = np.array(
    [np.nan, -np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 0.05, -0.05, 0.15, 3.0],
    np.float32,
)


def _session(nodes, inputs, outputs, inits=()) -> ort.InferenceSession:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("dtype", sorted(_ONNX))
@pytest.mark.parametrize("zero_point", [0, 3])
def test_quantize_special_values_match_onnxruntime(dtype: str, zero_point: int) -> None:
    x = SPECIAL.reshape(3, 4)
    scale = np.float32(0.1)
    zp = np.array(zero_point, np.dtype(dtype))
    sess = _session(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", _ONNX[dtype], list(x.shape))],
        [numpy_helper.from_array(np.array(scale), "s"), numpy_helper.from_array(zp, "z")],
    )
    want = sess.run(None, {"x": x})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        got = n.quantize_linear(x, scale, zp, dtype)
    np.testing.assert_array_equal(got, want)
    lo, hi = n.int_range(dtype)
    assert got[0, 0] == got[0, 1] == lo, "NaN quantizes to the type's minimum"
    assert got[0, 2] == hi and got[0, 3] == lo


def test_quantize_nan_per_axis() -> None:
    x = np.array([[np.nan, 1.0], [2.0, np.nan]], np.float32)
    got = n.quantize_linear(
        x, np.array([0.5, 0.25], np.float32), np.array([1, 2], np.int8), "int8", 1
    )
    assert got.tolist() == [[-128, 6], [5, -128]]


@pytest.mark.parametrize(
    "x",
    [
        [np.nan, 1.0, 2.0, 3.0],
        [1.0, np.nan, -2.0, 3.0],
        [np.inf, 1.0, 2.0, 3.0],
        [-np.inf, 1.0, 2.0, 3.0],
        [np.nan, np.nan, np.nan, np.nan],
        [-1.0, np.nan, -np.inf, 0.5],
    ],
)
def test_dynamic_quantize_special_values_match_onnxruntime(x: list[float]) -> None:
    xs = np.array(x, np.float32)
    sess = _session(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [
            helper.make_tensor_value_info("y", TensorProto.UINT8, [4]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
            helper.make_tensor_value_info("z", TensorProto.UINT8, []),
        ],
    )
    want_y, want_s, want_z = sess.run(None, {"x": xs})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, s, z = n.dynamic_quantize_linear(xs)
    np.testing.assert_array_equal(y, want_y)
    assert z == want_z
    assert s == want_s or (np.isnan(s) and np.isnan(want_s))


@pytest.mark.parametrize("activation_type", ["int8", "uint8"])
def test_simulate_nan_inputs_like_onnxruntime(activation_type: str, tmp_path) -> None:
    """A QDQ MLP fed NaN and +/-inf: the simulation equals onnxruntime (fidelity check)."""
    from codesign.codegen.build import CompileOptions, compile_model
    from codesign.examples import models
    from codesign.frontend.reference import run_onnxruntime
    from codesign.runtime.fidelity import compare
    from codesign.sim.functional import Simulator

    model = models.qdq_mlp(tmp_path / "m.onnx", activation_type=activation_type)
    plan = compile_model(model, tmp_path / "b", CompileOptions(synth=False))
    inputs = models.random_inputs(model, seed=2)
    x = inputs["input"]
    x.reshape(-1)[::5] = np.nan
    x.reshape(-1)[1::7] = np.inf
    x.reshape(-1)[2::7] = -np.inf
    sim = Simulator(tmp_path / "b")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        env = sim.run_all(inputs)
    outputs = {t.name: env[t.name] for t in plan.outputs}
    constants = {k: sim.data(f) for k, f in plan.constants.items()}
    results = compare(plan, outputs, run_onnxruntime(model, inputs), constants)
    assert results and all(r.passed and r.max_lsb == 0 for r in results), results
