"""attention-products on its own: tiny graphs, the expected op list, and the same numbers before
and after (whole-matrix interpretation, no schedule)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.ir.graph import DequantizeLinear, KernelGraph, Op, QuantizeLinear, TensorType
from codesign.kinds.batched_matmul import BatchedMatMul, perm_or_identity
from codesign.kinds.transpose import Transpose
from codesign.passes.attention import AttentionProducts
from codesign.sim import numerics


def _interpret(kg: KernelGraph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    env = {**kg.constants, **inputs}
    for op in kg.ops:
        xs = [env[i] for i in op.inputs if i]
        if isinstance(op, QuantizeLinear):
            out = numerics.quantize_linear(*xs, op.dtype, op.axis)
        elif isinstance(op, DequantizeLinear):
            out = numerics.dequantize_linear(*xs, op.axis)
        elif isinstance(op, Transpose):
            out = np.transpose(xs[0], op.perm)
        elif isinstance(op, BatchedMatMul):
            a = np.transpose(xs[0], perm_or_identity(op.a_perm, xs[0].ndim)).astype(np.float64)
            b = np.transpose(xs[1], perm_or_identity(op.b_perm, xs[1].ndim)).astype(np.float64)
            if op.dtype == "float32":
                y = (a @ b).astype(np.float32)
            else:
                y = ((a - op.a_zero_point) @ (b - op.b_zero_point)).astype(np.int32)
            out = np.transpose(y, perm_or_identity(op.out_perm, y.ndim))
        else:
            raise AssertionError(f"no interpretation of {type(op).__name__}")
        env[op.outputs[0]] = out
    return env


def _qdq_attention_graph() -> KernelGraph:
    """Q/K as quantize_static writes them around a head split and K^T: DQ -> Transpose -> Q ->
    DQ -> MatMul, and the head merge Transpose of the product's output."""
    kg = KernelGraph(inputs=["x", "y"], outputs=["out"])
    s = kg.add_const("s", np.array(0.05, np.float32))
    z = kg.add_const("z", np.array(120, np.uint8))
    s2 = kg.add_const("s2", np.array(0.02, np.float32))
    z2 = kg.add_const("z2", np.array(131, np.uint8))
    t = kg.types
    t.update(
        x=TensorType((1, 5, 2, 8), "uint8"),
        y=TensorType((1, 6, 2, 8), "uint8"),
        xf=TensorType((1, 5, 2, 8), "float32"),
        xt=TensorType((1, 2, 5, 8), "float32"),
        xq=TensorType((1, 2, 5, 8), "uint8"),
        xd=TensorType((1, 2, 5, 8), "float32"),
        yf=TensorType((1, 6, 2, 8), "float32"),
        yt=TensorType((1, 2, 8, 6), "float32"),
        yq=TensorType((1, 2, 8, 6), "uint8"),
        yd=TensorType((1, 2, 8, 6), "float32"),
        p=TensorType((1, 2, 5, 6), "float32"),
        out=TensorType((1, 5, 2, 6), "float32"),
    )
    ops: list[Op] = [
        DequantizeLinear("dq_x", ("x", s, z), ("xf",)),
        Transpose("split_x", ("xf",), ("xt",), perm=(0, 2, 1, 3)),
        QuantizeLinear("q_x", ("xt", s, z), ("xq",), dtype="uint8"),
        DequantizeLinear("dq_xq", ("xq", s, z), ("xd",)),
        DequantizeLinear("dq_y", ("y", s2, z2), ("yf",)),
        Transpose("split_y_t", ("yf",), ("yt",), perm=(0, 2, 3, 1)),
        QuantizeLinear("q_y", ("yt", s2, z2), ("yq",), dtype="uint8"),
        DequantizeLinear("dq_yq", ("yq", s2, z2), ("yd",)),
        BatchedMatMul("qk", ("xd", "yd"), ("p",)),
        Transpose("merge", ("p",), ("out",), perm=(0, 2, 1, 3)),
    ]
    kg.ops = ops
    return kg


def test_qdq_products_become_int8_with_transposes_folded() -> None:
    kg = _qdq_attention_graph()
    rng = np.random.default_rng(0)
    inputs = {
        "x": rng.integers(0, 256, (1, 5, 2, 8)).astype(np.uint8),
        "y": rng.integers(0, 256, (1, 6, 2, 8)).astype(np.uint8),
    }
    before = _interpret(kg, inputs)["out"]
    assert AttentionProducts()(kg).modified
    kg.prune()
    kg.validate()
    assert [type(op).__name__ for op in kg.ops] == ["BatchedMatMul", "DequantizeLinear"]
    (product, dq) = kg.ops
    assert product.inputs == ("x", "y") and product.dtype == "int8"
    assert (product.a_perm, product.b_perm, product.out_perm) == (
        (0, 2, 1, 3),
        (0, 2, 3, 1),
        (0, 2, 1, 3),
    )
    assert (product.a_zero_point, product.b_zero_point) == (120, 131)
    assert dq.outputs == ("out",)
    after = _interpret(kg, inputs)["out"]
    # the same real product: exact integers times one float32 scale (0.05*0.02) vs float64
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    assert not AttentionProducts()(kg).modified  # a fixpoint


def test_float_products_become_bf16_and_keep_an_unfoldable_transpose() -> None:
    kg = KernelGraph(inputs=["a", "b"], outputs=["y", "at"])
    kg.types.update(
        a=TensorType((3, 4, 8), "float32"),
        b=TensorType((3, 8, 5), "float32"),
        y=TensorType((3, 4, 5), "float32"),
        at=TensorType((3, 8, 4), "float32"),
    )
    kg.ops = [
        BatchedMatMul("mm", ("a", "b"), ("y",)),
        Transpose("t", ("a",), ("at",), perm=(0, 2, 1)),  # of a graph input: stays
    ]
    assert AttentionProducts()(kg).modified
    assert [(type(op).__name__, getattr(op, "dtype", None)) for op in kg.ops] == [
        ("BatchedMatMul", "bf16"),
        ("Transpose", None),
    ]


def test_requant_with_other_parameters_is_not_an_identity() -> None:
    """Q after a Transpose with a scale different from the DQ before it is a real requant."""
    kg = _qdq_attention_graph()
    q = next(op for op in kg.ops if op.name == "q_x")
    other = kg.add_const("s_other", np.array(0.07, np.float32))
    import dataclasses

    kg.replace(q, dataclasses.replace(q, inputs=("xt", other, q.inputs[2])))
    dq = next(op for op in kg.ops if op.name == "dq_xq")
    kg.replace(dq, dataclasses.replace(dq, inputs=("xq", other, dq.inputs[2])))
    AttentionProducts()(kg)
    kg.prune()
    names = [op.name for op in kg.ops]
    assert "q_x" in names  # the requantisation stays


@pytest.mark.parametrize("first", [(0, 2, 1, 3), (1, 0, 3, 2)])
def test_compose_is_transpose_of_transpose(first) -> None:
    from codesign.kinds.transpose import compose

    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    then = (0, 1, 3, 2)
    np.testing.assert_array_equal(
        np.transpose(np.transpose(x, first), then), np.transpose(x, compose(first, then))
    )
