"""quant-gemm rules on their own: QDQ MatMul and MatMulInteger -> integer GEMM, with the same
numbers before and after on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.ir.graph import (
    DequantizeLinear,
    KernelGraph,
    MatMul,
    MatMulInteger,
    TensorType,
    numpy_dtype,
)
from codesign.passes.fold import Prune
from codesign.passes.quant import QuantGemm
from codesign.sim import numerics
from tests.passes.interp import interpret, kinds


def _qdq_matmul(x_dtype: str, zx: int, per_channel: bool, M=6, K=16, N=8) -> KernelGraph:
    rng = np.random.default_rng(0)
    kg = KernelGraph(inputs=["xq"], outputs=["y"])
    kg.types.update(
        xq=TensorType((M, K), x_dtype),
        xd=TensorType((M, K), "float32"),
        wd=TensorType((K, N), "float32"),
        y=TensorType((M, N), "float32"),
    )
    kg.add_const("sx", np.float32(0.05))
    kg.add_const("zx", np.array(zx, dtype=numpy_dtype(x_dtype)))
    kg.add_const("W", rng.integers(-127, 128, (K, N)).astype(np.int8))
    sw = rng.uniform(0.005, 0.02, N).astype(np.float32) if per_channel else np.float32(0.01)
    kg.add_const("sw", sw)
    kg.add_const("zw", np.zeros(N, np.int8) if per_channel else np.int8(0))
    kg.ops = [
        DequantizeLinear("dqx", ("xq", "sx", "zx"), ("xd",)),
        DequantizeLinear("dqw", ("W", "sw", "zw"), ("wd",), axis=1 if per_channel else None),
        MatMul("mm", ("xd", "wd"), ("y",)),
    ]
    return kg


def _ints(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    lo, hi = numerics.int_range(dtype)
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, shape).astype(numpy_dtype(dtype))


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize(
    "x_dtype, zx, mode",
    [("int8", 0, "int8"), ("int8", 5, "int8"), ("uint8", 128, "int8"), ("int16", 0, "int16")],
)
def test_fold_qdq_matmul(x_dtype: str, zx: int, mode: str, per_channel: bool) -> None:
    kg = _qdq_matmul(x_dtype, zx, per_channel)
    x = {"xq": _ints(x_dtype, (6, 16), 1)}
    before = interpret(kg, x)["y"]
    assert QuantGemm(matmul_integer=False)(kg).modified
    Prune()(kg)
    kg.validate()
    assert kinds(kg) == ["gemm", "dequantize"]
    gemm = kg.ops[0]
    assert gemm.dtype == mode and gemm.inputs == ("xq",)
    assert (gemm.bias is not None) == (zx != 0)  # -zx * column sums
    after = interpret(kg, x)["y"]
    # the integer accumulator is exact; only the float32 rounding of the scaling differs
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6 * np.abs(before).max())


def test_fold_qdq_matmul_needs_dequantized_operands() -> None:
    kg = _qdq_matmul("int8", 0, False)
    kg.ops = [kg.ops[1], MatMul("mm", ("xd", "wd"), ("y",))]  # A is a graph input, not DQ(x)
    kg.inputs = ["xd"]
    ops = kg.ops
    assert not QuantGemm()(kg).modified
    assert kg.ops == ops


@pytest.mark.parametrize("runtime_za", [False, True])
def test_fold_matmul_integer(runtime_za: bool) -> None:
    rng = np.random.default_rng(3)
    kg = KernelGraph(inputs=["a", "za"] if runtime_za else ["a"], outputs=["y"])
    kg.types.update(a=TensorType((3, 16), "uint8"), y=TensorType((3, 8), "int32"))
    if runtime_za:
        kg.types["za"] = TensorType((), "uint8")
    else:
        kg.add_const("za", np.uint8(117))
    kg.add_const("W", rng.integers(-60, 60, (16, 8)).astype(np.int8))
    kg.add_const("zw", rng.integers(-3, 4, 8).astype(np.int8))  # per output column
    kg.ops = [MatMulInteger("mi", ("a", "W", "za", "zw"), ("y",))]
    x = {"a": rng.integers(0, 256, (3, 16)).astype(np.uint8)}
    if runtime_za:
        x["za"] = np.uint8(117)
    before = interpret(kg, x)["y"]
    assert QuantGemm(qdq_matmul=False)(kg).modified
    kg.validate()
    assert kinds(kg) == ["gemm"]
    gemm = kg.ops[0]
    if runtime_za:
        assert gemm.inputs == ("a", "za") and gemm.colsum and gemm.bias is None
    else:
        assert gemm.inputs == ("a",) and gemm.bias and gemm.colsum is None
    np.testing.assert_array_equal(interpret(kg, x)["y"], before)  # exact


def test_options_turn_rules_off() -> None:
    kg = _qdq_matmul("int8", 0, False)
    assert not QuantGemm(qdq_matmul=False)(kg).modified
    assert QuantGemm(qdq_matmul=False).rules() and not QuantGemm(False, False).rules()
