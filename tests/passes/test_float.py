"""float-gemm on its own: a float MatMul with a constant weight -> bf16 GEMM, with the numbers of
the float graph up to bf16's rounding of the operands."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import ModelError
from codesign.ir.graph import KernelGraph, MatMul, TensorType
from codesign.passes.float import FloatGemm
from codesign.sim import numerics
from tests.passes.interp import interpret, kinds


def _matmul(w: np.ndarray) -> KernelGraph:
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types.update(
        x=TensorType((5, w.shape[0]), "float32"), y=TensorType((5, w.shape[1]), "float32")
    )
    kg.add_const("W", w)
    kg.ops = [MatMul("mm", ("x", "W"), ("y",))]
    return kg


def test_float_matmul_to_gemm() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(32, 8)).astype(np.float32)
    kg = _matmul(w)
    x = {"x": rng.normal(size=(5, 32)).astype(np.float32)}
    before = interpret(kg, x)["y"]
    assert FloatGemm()(kg).modified
    kg.validate()
    assert kinds(kg) == ["gemm"] and kg.ops[0].dtype == "bf16" and kg.ops[0].outputs == ("y",)
    after = interpret(kg, x)["y"]
    # each operand is rounded to bf16 (relative error <= 2^-8 each), products summed in fp32
    bound = (2**-7 + 2**-16) * (np.abs(x["x"]) @ np.abs(w)) + 1e-5
    assert np.all(np.abs(after - before) <= bound)
    # and it is exactly the float graph on bf16-rounded operands, summed in fp32
    exact = _matmul(numerics.to_bf16(w))
    rounded = interpret(exact, {"x": numerics.to_bf16(x["x"])})["y"]
    np.testing.assert_allclose(after, rounded, rtol=1e-5, atol=1e-5)


def test_weight_beyond_bf16_is_refused() -> None:
    kg = _matmul(np.full((4, 2), 3.4e38, np.float32))
    with pytest.raises(ModelError, match="node 'mm': float weight 'W' must fit bf16"):
        FloatGemm()(kg)


def test_integer_or_runtime_weight_is_left_alone() -> None:
    kg = _matmul(np.ones((4, 2), np.int8))
    assert not FloatGemm()(kg).modified and kinds(kg) == ["matmul"]
