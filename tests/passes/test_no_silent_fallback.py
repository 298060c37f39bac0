"""A quantized GEMM is never switched to another arithmetic silently (issue 10 item 2, issue 11
item 15): each form below either compiles to an exact integer GEMM that passes the fidelity
check against onnxruntime, or is refused at compile with one line saying what to change. Before,
each of them compiled to a bf16 GEMM with exit 0 and then failed ``simulate --reference``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codesign.codegen.build import CompileOptions, compile_model
from codesign.errors import UnsupportedError
from codesign.examples import models
from codesign.frontend.reference import run_onnxruntime
from codesign.runtime.fidelity import compare
from codesign.sim.functional import Simulator

M, K, N = 8, 16, 8
_NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16}


def _qdq_matmul(
    path: Path,
    *,
    act: str = "int8",
    act_scale: np.ndarray | float = 0.02,
    weight: np.ndarray,
    w_scale: np.ndarray | float = 0.01,
    w_zero: np.ndarray | int = 0,
    out: str = "int8",
) -> Path:
    """``Q/DQ(x) @ DQ(W) -> Q/DQ(y)``, the QDQ form of one quantized layer."""
    act_scale = np.asarray(act_scale, np.float32)
    w_scale = np.asarray(w_scale, np.float32)
    w_zero = np.asarray(w_zero, weight.dtype)
    inits = [
        numpy_helper.from_array(act_scale, "sx"),
        numpy_helper.from_array(np.zeros(act_scale.shape, _NP[act]), "zx"),
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(w_scale, "sw"),
        numpy_helper.from_array(w_zero, "zw"),
        numpy_helper.from_array(np.asarray(0.05, np.float32), "sy"),
        numpy_helper.from_array(np.asarray(0, _NP[out]), "zy"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "sx", "zx"], ["xq"], name="qx", axis=1),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], name="dqx", axis=1),
        helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], name="dqw", axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["y"], name="fc"),
        helper.make_node("QuantizeLinear", ["y", "sy", "zy"], ["yq"], name="qy"),
        helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["output"], name="dqy"),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq_layer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [M, K])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [M, N])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def _compile_and_check(model: Path, tmp: Path) -> str:
    """'compiled' after a passing fidelity check, or the refusal's message."""
    try:
        plan = compile_model(model, tmp / "b", CompileOptions(synth=False))
    except UnsupportedError as e:
        msg = str(e)
        assert "\n" not in msg and str(model) in msg and "node 'fc'" in msg, msg
        return msg
    assert all(g.dtype != "bf16" for g in plan.gemms()), "a quantized GEMM became bf16"
    sim = Simulator(tmp / "b")
    inputs = models.random_inputs(model, seed=3)
    env = sim.run_all(inputs)
    outputs = {t.name: env[t.name] for t in plan.outputs}
    constants = {n: sim.data(f) for n, f in plan.constants.items()}
    results = compare(plan, outputs, run_onnxruntime(model, inputs), constants)
    assert results and all(r.passed for r in results), results
    return "compiled"


def _int16_weight(rng: np.random.Generator, lo: int = -32768, hi: int = 32767) -> np.ndarray:
    return rng.integers(lo, hi, (K, N), endpoint=True).astype(np.int16)


def test_int16_weight_with_zero_point_minus_32768_is_refused(tmp_path: Path) -> None:
    w = _int16_weight(np.random.default_rng(0))
    model = _qdq_matmul(tmp_path / "m.onnx", weight=w, w_scale=1e-5, w_zero=-32768)
    msg = _compile_and_check(model, tmp_path)
    assert "beyond int16" in msg and "WeightSymmetric" in msg


def test_int16_weight_with_small_zero_point_is_exact(tmp_path: Path) -> None:
    """W - zw still fits int16: the zero point is folded into the weight, exactly."""
    w = _int16_weight(np.random.default_rng(1), -30000, 30000)
    model = _qdq_matmul(tmp_path / "m.onnx", weight=w, w_scale=1e-5, w_zero=37)
    assert _compile_and_check(model, tmp_path) == "compiled"


def test_per_axis_activation_scales_are_refused(tmp_path: Path) -> None:
    w = np.random.default_rng(2).integers(-127, 127, (K, N)).astype(np.int8)
    scales = np.linspace(0.01, 0.03, K, dtype=np.float32)
    model = _qdq_matmul(tmp_path / "m.onnx", act_scale=scales, weight=w)
    msg = _compile_and_check(model, tmp_path)
    assert "per tensor" in msg and "'xq'" in msg


@pytest.mark.parametrize("tiny", [1e-40, 1e-45])
def test_one_subnormal_per_channel_scale(tiny: float, tmp_path: Path) -> None:
    w = np.random.default_rng(3).integers(-127, 127, (K, N)).astype(np.int8)
    sw = np.full(N, 0.01, np.float32)
    sw[3] = tiny
    model = _qdq_matmul(tmp_path / "m.onnx", weight=w, w_scale=sw, w_zero=np.zeros(N, np.int8))
    got = _compile_and_check(model, tmp_path)
    assert got == "compiled" or "float32 range" in got


def test_uint16_activations_are_refused(tmp_path: Path) -> None:
    w = np.random.default_rng(4).integers(-127, 127, (K, N)).astype(np.int8)
    model = _qdq_matmul(tmp_path / "m.onnx", act="uint16", act_scale=1e-4, weight=w)
    msg = _compile_and_check(model, tmp_path)
    assert "uint16 activations" in msg and "activation_type" in msg


def test_bias_off_the_accumulator_step_stays_exact(tmp_path: Path) -> None:
    """Found by the structure-aware fuzzer: an input scale 1000x larger makes the int32 bias
    (scaled by the old sx * sw) a non-whole number of accumulator steps. Rounding it into the
    GEMM's bias moved 75 % of the outputs by 1 LSB (exit 3); the bias now stays a float Add."""
    src = models.qdq_mlp(
        tmp_path / "q.onnx", dims=(8, 16, 4), batch=2, per_channel=True, use_gemm=True
    )
    m = onnx.load(src)
    for t in m.graph.initializer:
        if t.name == "input_scale":
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * np.float32(1000), t.name))
    model = tmp_path / "m.onnx"
    onnx.save(m, model)
    assert _compile_and_check(model, tmp_path) == "compiled"
