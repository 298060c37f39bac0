"""The whole pipeline (to_hardware) on tiny KernelGraphs: the expected ops after, and the same
numbers before and after (qonnx-style equivalence), evaluated by a small interpreter. Each rule
on its own: test_quant.py, test_epilogue.py, test_float.py, test_primitives.py, test_fold.py."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.ir.graph import (
    DequantizeLinear,
    KernelGraph,
    MatMul,
    MatMulInteger,
    QuantizeLinear,
    TensorType,
    Vector,
)
from codesign.passes.pipeline import to_hardware
from tests.passes.interp import interpret, kinds


def _graph(M=5, K=24, N=12, *, bias=True, relu=True, requant=True, per_channel=False, zx=4, seed=0):
    rng = np.random.default_rng(seed)
    kg = KernelGraph(inputs=["x"], outputs=["out"])
    kg.types["x"] = TensorType((M, K), "float32")
    c = kg.add_const
    c("sx", np.float32(0.05))
    c("zx", np.int8(zx))
    c("W", rng.integers(-127, 128, (K, N)).astype(np.int8))
    c("sw", rng.uniform(0.005, 0.02, N).astype(np.float32) if per_channel else np.float32(0.01))
    c("zw", np.zeros(N, np.int8) if per_channel else np.int8(0))
    c("b", rng.normal(size=N).astype(np.float32))
    c("sy", np.float32(0.04))
    c("zy", np.int8(-128 if relu else 0))
    for t, shape, dt in [
        ("xq", (M, K), "int8"),
        ("xd", (M, K), "float32"),
        ("wd", (K, N), "float32"),
        ("mm", (M, N), "float32"),
        ("mb", (M, N), "float32"),
        ("mr", (M, N), "float32"),
        ("yq", (M, N), "int8"),
        ("out", (M, N), "float32"),
    ]:
        kg.types[t] = TensorType(shape, dt)
    ops = [
        QuantizeLinear("q", ("x", "sx", "zx"), ("xq",), dtype="int8"),
        DequantizeLinear("dq", ("xq", "sx", "zx"), ("xd",)),
        DequantizeLinear("dqw", ("W", "sw", "zw"), ("wd",), axis=1 if per_channel else None),
        MatMul("mm", ("xd", "wd"), ("mm",)),
    ]
    last = "mm"
    if bias:
        ops.append(Vector("bias", (last, "b"), ("mb",), fn="add"))
        last = "mb"
    if relu:
        ops.append(Vector("relu", (last,), ("mr",), fn="relu"))
        last = "mr"
    if requant:
        ops += [
            QuantizeLinear("qy", (last, "sy", "zy"), ("yq",), dtype="int8"),
            DequantizeLinear("dqy", ("yq", "sy", "zy"), ("out",)),
        ]
    else:
        ops.append(Vector("copy", (last, "zeroadd"), ("out",), fn="add"))
        c("zeroadd", np.float32(0))
    kg.ops = ops
    return kg


@pytest.mark.parametrize("zx", [0, 4])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bias, relu", [(True, True), (True, False), (False, True), (False, False)])
def test_qdq_matmul_folds_into_requantised_int8_gemm(per_channel, bias, relu, zx) -> None:
    kg = _graph(M=128, bias=bias, relu=relu, per_channel=per_channel, zx=zx)
    x = {"x": np.random.default_rng(1).normal(size=(128, 24)).astype(np.float32)}
    before = interpret(kg, x)["out"]
    to_hardware(kg)
    assert kinds(kg) == ["quantize", "gemm", "dequantize"]
    gemm = kg.ops[1]
    assert gemm.dtype == "int8" and gemm.requant is not None and gemm.relu == relu
    # a bias comes from the Add or from the activation zero point (-zx * column sums)
    assert (gemm.bias is not None) == (bias or zx != 0)
    after = interpret(kg, x)["out"]
    lsb = np.rint(np.abs(after - before) / 0.04)
    assert lsb.max() <= 1 and (lsb == 0).mean() >= 0.99


def test_float_tail_stays_float_but_gemm_is_integer() -> None:
    kg = _graph(requant=False, relu=False)
    x = {"x": np.random.default_rng(2).normal(size=(5, 24)).astype(np.float32)}
    before = interpret(kg, x)["out"]
    to_hardware(kg)
    assert kinds(kg) == ["quantize", "gemm", "dequantize"]  # both adds fold into the bias
    assert kg.ops[1].requant is None
    after = interpret(kg, x)["out"]
    # a float bias folded into the int32 accumulator is rounded to its scale sx*sw
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=0.05 * 0.01 / 2 + 1e-6)


def test_matmul_integer_with_runtime_zero_point() -> None:
    kg = KernelGraph(inputs=["a", "za"], outputs=["y"])
    kg.types.update(
        a=TensorType((3, 16), "uint8"), za=TensorType((), "uint8"), y=TensorType((3, 8), "int32")
    )
    w = np.random.default_rng(3).integers(-60, 60, (16, 8)).astype(np.int8)
    kg.add_const("W", w)
    kg.add_const("zw", np.int8(0))
    kg.ops = [MatMulInteger("mi", ("a", "W", "za", "zw"), ("y",))]
    x = {
        "a": np.random.default_rng(4).integers(0, 256, (3, 16)).astype(np.uint8),
        "za": np.uint8(117),
    }
    before = interpret(kg, x)["y"]
    to_hardware(kg)
    assert kinds(kg) == ["gemm"] and kg.ops[0].inputs == ("a", "za") and kg.ops[0].colsum
    np.testing.assert_array_equal(interpret(kg, x)["y"], before)


def test_float_matmul_becomes_bf16_gemm_with_bias_and_relu() -> None:
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types.update(
        x=TensorType((4, 8), "float32"),
        m=TensorType((4, 6), "float32"),
        b=TensorType((4, 6), "float32"),
        y=TensorType((4, 6), "float32"),
    )
    rng = np.random.default_rng(5)
    kg.add_const("W", rng.normal(size=(8, 6)).astype(np.float32))
    kg.add_const("bias", rng.normal(size=6).astype(np.float32))
    kg.ops = [
        MatMul("mm", ("x", "W"), ("m",)),
        Vector("add", ("m", "bias"), ("b",), fn="add"),
        Vector("relu", ("b",), ("y",), fn="relu"),
    ]
    x = {"x": rng.normal(size=(4, 8)).astype(np.float32)}
    before = interpret(kg, x)["y"]
    to_hardware(kg)
    assert kinds(kg) == ["gemm"] and kg.ops[0].dtype == "bf16" and kg.ops[0].relu and kg.ops[0].bias
    np.testing.assert_allclose(interpret(kg, x)["y"], before, atol=0.05 * np.abs(before).max())
