"""fold-epilogue rules on their own (bias, ReLU, requantisation into a GEMM), each on a tiny
graph that starts where quant-gemm / float-gemm leave it, with the same numbers before and after
up to the rounding the rule documents."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.ir.graph import (
    DequantizeLinear,
    Gemm,
    KernelGraph,
    Op,
    QuantizeLinear,
    TensorType,
    Vector,
)
from codesign.passes.epilogue import FoldEpilogue
from codesign.sim import numerics
from tests.passes.interp import interpret, kinds

M, K, N = 64, 16, 16


def _int_gemm(tail: list[Op], out: str, out_dtype: str = "float32", dtype: str = "int8"):
    """a -> Gemm_int -> DQ(acc, s, 0) -> d, then ``tail`` ending in ``out``; and inputs."""
    rng = np.random.default_rng(0)
    kg = KernelGraph(inputs=["a"], outputs=[out])
    lo, hi = numerics.int_range(dtype)
    wlo, whi = (-127, 127) if dtype == "int8" else (-30000, 30000)  # int16: acc64, preshift
    kg.types.update(
        a=TensorType((M, K), dtype),
        acc=TensorType((M, N), "int32"),
        d=TensorType((M, N), "float32"),
        r=TensorType((M, N), "float32"),
    )
    kg.types[out] = TensorType((M, N), out_dtype)
    wd = np.int8 if dtype == "int8" else np.int16
    kg.add_const("w", rng.integers(wlo, whi + 1, (K, N)).astype(wd))
    scale = 1e-3 if dtype == "int8" else 1e-9
    kg.add_const("s", rng.uniform(0.5 * scale, 2 * scale, N).astype(np.float32))
    kg.add_const("z", np.int32(0))
    kg.add_const("b", rng.normal(size=N).astype(np.float32))
    kg.add_const("sy", np.float32(0.02 if dtype == "int8" else 1e-3))
    kg.add_const("zy", np.array(3, numerics_dtype(out_dtype)))
    kg.ops = [
        Gemm("g", ("a",), ("acc",), weight="w", dtype=dtype),
        DequantizeLinear("dq", ("acc", "s", "z"), ("d",), axis=-1),
        *tail,
    ]
    if dtype == "int16":  # keep the un-requantised int32 output of the graph before unsaturated
        lo, hi = -3000, 3000
    x = {"a": rng.integers(lo, hi + 1, (M, K)).astype(wd)}
    return kg, x


def numerics_dtype(dtype: str) -> type:
    return {"int8": np.int8, "int16": np.int16}.get(dtype, np.int8)


def _bf16_gemm(tail: list[Op], out: str):
    rng = np.random.default_rng(1)
    kg = KernelGraph(inputs=["x"], outputs=[out])
    kg.types.update(
        x=TensorType((M, K), "float32"),
        d=TensorType((M, N), "float32"),
        r=TensorType((M, N), "float32"),
        y=TensorType((M, N), "float32"),
    )
    kg.add_const("w", numerics.to_bf16(rng.normal(size=(K, N)).astype(np.float32)))
    kg.add_const("b", rng.normal(size=N).astype(np.float32))
    kg.ops = [Gemm("g", ("x",), ("d",), weight="w", dtype="bf16"), *tail]
    return kg, {"x": rng.normal(size=(M, K)).astype(np.float32)}


def _run(kg: KernelGraph, x: dict, p: FoldEpilogue, expected: list[str]):
    before = interpret(kg, x)
    assert p(kg).modified
    kg.validate()
    assert kinds(kg) == expected
    return before, interpret(kg, x)


def test_fold_bias_int() -> None:
    kg, x = _int_gemm([Vector("add", ("d", "b"), ("y",), fn="add")], "y")
    before, after = _run(kg, x, FoldEpilogue(relu=False, requant=False), ["gemm", "dequantize"])
    assert kg.ops[0].bias and kg.ops[1].outputs == ("y",)
    # the float bias is rounded to the accumulator's scale: at most half a step per channel
    half = kg.const("s").astype(np.float64) / 2
    assert np.all(np.abs(after["y"] - before["y"]) <= half * (1 + 1e-5) + 1e-6)


def test_fold_bias_bf16() -> None:
    kg, x = _bf16_gemm([Vector("add", ("d", "b"), ("y",), fn="add")], "y")
    before, after = _run(kg, x, FoldEpilogue(relu=False, requant=False), ["gemm"])
    assert kg.ops[0].bias and kg.ops[0].outputs == ("y",)
    np.testing.assert_allclose(after["y"], before["y"], rtol=1e-6, atol=1e-6)


def test_fold_relu_int() -> None:
    kg, x = _int_gemm([Vector("relu", ("d",), ("y",), fn="relu")], "y")
    before, after = _run(kg, x, FoldEpilogue(bias=False, requant=False), ["gemm", "dequantize"])
    assert kg.ops[0].relu
    np.testing.assert_array_equal(after["y"], before["y"])  # scale > 0, zero point 0: exact


def test_fold_relu_bf16() -> None:
    kg, x = _bf16_gemm([Vector("relu", ("d",), ("y",), fn="relu")], "y")
    before, after = _run(kg, x, FoldEpilogue(bias=False, requant=False), ["gemm"])
    assert kg.ops[0].relu
    np.testing.assert_array_equal(after["y"], before["y"])


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_fold_requant(dtype: str) -> None:
    q = QuantizeLinear("q", ("d", "sy", "zy"), ("yq",), dtype=dtype)
    kg, x = _int_gemm([q], "yq", out_dtype=dtype, dtype=dtype)
    before, after = _run(kg, x, FoldEpilogue(bias=False, relu=False), ["gemm"])
    gemm = kg.ops[0]
    assert gemm.requant is not None and gemm.requant.zero_point == 3
    assert gemm.outputs == ("yq",) and (gemm.acc_shift > 0) == (dtype == "int16")
    # requantisation by a fixed-point multiplier: at most 1 LSB off, nearly always exact
    lsb = np.abs(after["yq"].astype(np.int64) - before["yq"].astype(np.int64))
    assert lsb.max() <= 1 and (lsb == 0).mean() >= 0.99
    assert np.unique(before["yq"]).size > 20  # the outputs span many steps, not a clipped few


def test_whole_epilogue_in_order() -> None:
    tail = [
        Vector("add", ("d", "b"), ("r",), fn="add"),
        Vector("relu", ("r",), ("y",), fn="relu"),
    ]
    kg, x = _int_gemm(tail, "y")
    before, after = _run(kg, x, FoldEpilogue(), ["gemm", "dequantize"])
    assert kg.ops[0].bias and kg.ops[0].relu
    half = kg.const("s").astype(np.float64) / 2
    assert np.all(np.abs(after["y"] - before["y"]) <= half * (1 + 1e-5) + 1e-6)


def test_bias_after_relu_is_not_folded() -> None:
    tail = [
        Vector("relu", ("d",), ("r",), fn="relu"),
        Vector("add", ("r", "b"), ("y",), fn="add"),
    ]
    kg, x = _int_gemm(tail, "y")
    before, after = _run(kg, x, FoldEpilogue(), ["gemm", "dequantize", "add"])
    assert kg.ops[0].relu and kg.ops[0].bias is None  # relu(acc) + b != relu(acc + b)
    np.testing.assert_array_equal(after["y"], before["y"])


def test_shared_gemm_output_is_not_folded() -> None:
    tail = [
        Vector("add", ("d", "b"), ("y",), fn="add"),
        Vector("relu", ("d",), ("r",), fn="relu"),
    ]
    kg, _ = _int_gemm(tail, "y")
    kg.outputs.append("r")
    ops = kg.ops
    assert not FoldEpilogue()(kg).modified  # d has two users: neither may take the GEMM
    assert kg.ops == ops
