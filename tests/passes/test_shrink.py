"""shrink-gemms on its own: tiny hardware graphs (producer GEMM -> element-wise chain -> consumer
GEMM) with pruned neurons, the expected shapes after the pass, and the same numbers before and
after (exact for integer GEMMs, within the bf16 rounding of the consumer's fp32 accumulation for
bf16 when a dead neuron has a bias)."""

from __future__ import annotations

import numpy as np

from codesign.ir.graph import Gemm, KernelGraph, Requant, TensorType, Vector
from codesign.passes.shrink import ShrinkGemms
from codesign.sim import numerics
from tests.passes.interp import interpret, kinds

M, K, H, N = 16, 8, 12, 4


def _bf16_mlp(dead_bias: bool, act: str = "relu") -> tuple[KernelGraph, dict]:
    """x -> Gemm(bias) -> act -> Gemm -> y, with neurons 0, 3, 6, 9 dead (zero weight column)
    and row 5 of the second weight zero."""
    rng = np.random.default_rng(0)
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types.update(
        x=TensorType((M, K), "float32"),
        h=TensorType((M, H), "float32"),
        r=TensorType((M, H), "float32"),
        y=TensorType((M, N), "float32"),
    )
    w1 = numerics.to_bf16(rng.normal(size=(K, H)).astype(np.float32))
    w1[:, ::3] = 0
    b1 = rng.normal(size=H).astype(np.float32)
    if not dead_bias:
        b1[::3] = 0
    w2 = numerics.to_bf16(rng.normal(size=(H, N)).astype(np.float32))
    w2[5] = 0
    kg.add_const("w1", w1)
    kg.add_const("b1", b1)
    kg.add_const("w2", w2)
    kg.ops = [
        Gemm("g1", ("x",), ("h",), weight="w1", bias="b1", dtype="bf16"),
        Vector("act", ("h",), ("r",), fn=act),
        Gemm("g2", ("r",), ("y",), weight="w2", dtype="bf16"),
    ]
    return kg, {"x": rng.normal(size=(M, K)).astype(np.float32)}


def _shapes(kg: KernelGraph) -> list[tuple[int, ...]]:
    return [tuple(kg.const(op.weight).shape) for op in kg.ops if isinstance(op, Gemm)]


def test_bf16_dead_neurons_without_bias_shrink_exactly() -> None:
    kg, x = _bf16_mlp(dead_bias=False)
    before = interpret(kg, x)
    assert ShrinkGemms()(kg).modified
    kg.validate()
    assert kinds(kg) == ["gemm", "relu", "gemm"]
    assert _shapes(kg) == [(K, H - 5), (H - 5, N)]  # 4 dead neurons, 1 ignored input
    assert kg.types["h"].shape == (M, H - 5) and kg.types["r"].shape == (M, H - 5)
    np.testing.assert_array_equal(interpret(kg, x)["y"], before["y"])


def test_bf16_dead_neuron_bias_is_folded_into_the_next_bias() -> None:
    """A dead neuron with a bias outputs relu(bias): the next GEMM's bias absorbs it."""
    kg, x = _bf16_mlp(dead_bias=True)
    before = interpret(kg, x)
    assert ShrinkGemms()(kg).modified
    g2 = kg.ops[-1]
    assert _shapes(kg) == [(K, H - 5), (H - 5, N)] and g2.bias is not None
    after = interpret(kg, x)["y"]
    # the folded products are added in another order than the fp32 cascade adds them
    np.testing.assert_allclose(
        after, before["y"], rtol=2**-8, atol=2**-8 * np.abs(before["y"]).max()
    )
    # and the bias mattered: without folding, the outputs would be off by far more
    assert np.abs(after - before["y"]).max() < 0.01 * np.abs(g2_bias := kg.const(g2.bias)).max()
    assert np.abs(g2_bias).max() > 0


def test_second_run_changes_nothing() -> None:
    kg, _ = _bf16_mlp(dead_bias=True)
    ShrinkGemms()(kg)
    assert not ShrinkGemms()(kg).modified


def _int_mlp() -> tuple[KernelGraph, dict]:
    """x (int8) -> Gemm int8 (bias, per-channel requant to uint8 with zero point 7) -> Gemm int8
    (bias, activation zero point folded) -> int32 y; dead neurons 1, 4, 7, 10 (two with a bias,
    so their constant requantised output is folded), row 2 of the second weight zero."""
    rng = np.random.default_rng(1)
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types.update(
        x=TensorType((M, K), "int8"),
        h=TensorType((M, H), "uint8"),
        y=TensorType((M, N), "int32"),
    )
    w1 = rng.integers(-127, 128, (K, H)).astype(np.int8)
    w1[:, 1::3] = 0
    b1 = rng.integers(-3000, 3000, H).astype(np.int32)
    b1[1::6] = 0
    w2 = rng.integers(-127, 128, (H, N)).astype(np.int8)
    w2[2] = 0
    kg.add_const("w1", w1)
    kg.add_const("b1", b1)
    mult, shift = numerics.quantize_multiplier(rng.uniform(1e-3, 4e-3, H))
    kg.add_const("m1", mult.astype(np.int32))
    kg.add_const("s1", shift.astype(np.int32))
    kg.add_const("w2", w2)
    kg.add_const("b2", (-7 * w2.astype(np.int64).sum(0) + 100).astype(np.int32))
    rq = Requant("m1", "s1", zero_point=7, dtype="uint8")
    kg.ops = [
        Gemm("g1", ("x",), ("h",), weight="w1", bias="b1", dtype="int8", requant=rq),
        Gemm("g2", ("h",), ("y",), weight="w2", bias="b2", dtype="int8"),
    ]
    return kg, {"x": rng.integers(-128, 128, (M, K)).astype(np.int8)}


def test_int_dead_neurons_and_zero_rows_shrink_exactly() -> None:
    kg, x = _int_mlp()
    before = interpret(kg, x)
    assert ShrinkGemms()(kg).modified
    kg.validate()
    assert _shapes(kg) == [(K, H - 5), (H - 5, N)]
    g1 = kg.ops[0]
    assert kg.const(g1.requant.multiplier).shape == (H - 5,)
    np.testing.assert_array_equal(interpret(kg, x)["y"], before["y"])


def test_int_chain_through_dequantize_relu_quantize() -> None:
    """An un-fused requantisation (int32 -> DQ -> ReLU -> Q) is element-wise per feature: the
    per-channel scale is sliced with the features."""
    rng = np.random.default_rng(2)
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types.update(
        x=TensorType((M, K), "int8"),
        acc=TensorType((M, H), "int32"),
        d=TensorType((M, H), "float32"),
        r=TensorType((M, H), "float32"),
        q=TensorType((M, H), "int8"),
        y=TensorType((M, N), "int32"),
    )
    w1 = rng.integers(-127, 128, (K, H)).astype(np.int8)
    w1[:, :4] = 0
    b1 = rng.integers(-500, 500, H).astype(np.int32)
    b1[:4] = (300, -200, 400, 0)  # two dead neurons with a positive bias: relu keeps it
    kg.add_const("w1", w1)
    kg.add_const("b1", b1)
    kg.add_const("s", rng.uniform(1e-3, 2e-3, H).astype(np.float32))
    kg.add_const("z", np.zeros((), np.int32))
    kg.add_const("sy", np.float32(0.05))
    kg.add_const("zy", np.int8(0))
    kg.add_const("w2", rng.integers(-127, 128, (H, N)).astype(np.int8))
    kg.ops = [
        Gemm("g1", ("x",), ("acc",), weight="w1", bias="b1", dtype="int8"),
        Vector("dq", ("acc", "s", "z"), ("d",), fn="dequantize", attrs=(("axis", -1),)),
        Vector("relu", ("d",), ("r",), fn="relu"),
        Vector(
            "q", ("r", "sy", "zy"), ("q",), fn="quantize", attrs=(("axis", None), ("dtype", "int8"))
        ),
        Gemm("g2", ("q",), ("y",), weight="w2", dtype="int8"),
    ]
    x = {"x": rng.integers(-128, 128, (M, K)).astype(np.int8)}
    before = interpret(kg, x)
    assert ShrinkGemms()(kg).modified
    kg.validate()
    assert _shapes(kg) == [(K, H - 4), (H - 4, N)]
    assert kg.const(kg.ops[1].inputs[1]).shape == (H - 4,)
    assert kg.ops[-1].bias is not None  # relu(b1 * s) quantised is folded
    np.testing.assert_array_equal(interpret(kg, x)["y"], before["y"])


def test_a_fork_or_a_dynamic_quantisation_is_not_shrunk() -> None:
    kg, _ = _bf16_mlp(dead_bias=False)
    kg.outputs.append("r")  # the activation is also a graph output: its lanes are visible
    assert not ShrinkGemms()(kg).modified
    rng = np.random.default_rng(3)
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types.update(
        x=TensorType((M, K), "int8"),
        h=TensorType((M, H), "float32"),
        q=TensorType((M, H), "uint8"),
        s=TensorType((), "float32"),
        z=TensorType((), "uint8"),
        y=TensorType((M, N), "int32"),
    )
    w1 = rng.integers(-127, 128, (K, H)).astype(np.int8)
    w1[:, :3] = 0
    kg.add_const("w1", w1)
    kg.add_const("w2", rng.integers(-127, 128, (H, N)).astype(np.int8))
    kg.add_const("cs", kg.const("w2").astype(np.int32).sum(0))
    kg.ops = [
        Gemm("g1", ("x",), ("h",), weight="w1", dtype="bf16"),
        Vector("dql", ("h",), ("q", "s", "z"), fn="dynamic_quantize"),
        Gemm("g2", ("q", "z"), ("y",), weight="w2", colsum="cs", dtype="int8"),
    ]
    # the dynamic quantisation's range covers every lane, dead ones too: nothing may leave
    assert not ShrinkGemms()(kg).modified


def test_all_features_removable_keeps_one() -> None:
    kg, x = _bf16_mlp(dead_bias=False)
    kg.constants["w1"] = np.zeros_like(kg.const("w1"))
    kg.constants["b1"] = np.zeros_like(kg.const("b1"))
    before = interpret(kg, x)
    ShrinkGemms()(kg)
    kg.validate()
    assert _shapes(kg) == [(K, 1), (1, N)]
    np.testing.assert_array_equal(interpret(kg, x)["y"], before["y"])
