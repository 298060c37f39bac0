"""lower-primitives on its own: leftover Quantize/Dequantize/DynamicQuantize -> vector ops,
bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.ir.graph import (
    DequantizeLinear,
    DynamicQuantizeLinear,
    KernelGraph,
    QuantizeLinear,
    TensorType,
)
from codesign.passes.base import PostconditionError
from codesign.passes.primitives import LowerPrimitives
from tests.passes.interp import interpret, kinds


def _graph() -> KernelGraph:
    kg = KernelGraph(inputs=["x"], outputs=["y", "yd", "s", "z"])
    kg.types.update(
        x=TensorType((4, 6), "float32"),
        q=TensorType((4, 6), "int8"),
        y=TensorType((4, 6), "float32"),
        yd=TensorType((4, 6), "uint8"),
        s=TensorType((), "float32"),
        z=TensorType((), "uint8"),
    )
    kg.add_const("sx", np.float32(0.03))
    kg.add_const("zx", np.int8(-2))
    kg.add_const("sc", np.linspace(0.02, 0.05, 6).astype(np.float32))
    kg.add_const("zc", np.zeros(6, np.int8))
    kg.ops = [
        QuantizeLinear("q", ("x", "sx", "zx"), ("q",), dtype="int8"),
        DequantizeLinear("dq", ("q", "sc", "zc"), ("y",), axis=1),  # per axis
        DynamicQuantizeLinear("dyn", ("x",), ("yd", "s", "z")),
    ]
    return kg


def test_primitive_to_vector() -> None:
    kg = _graph()
    x = {"x": np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)}
    before = interpret(kg, x)
    assert LowerPrimitives()(kg).modified
    kg.validate()
    assert kinds(kg) == ["quantize", "dequantize", "dynamic_quantize"]
    after = interpret(kg, x)
    for name in kg.outputs:
        np.testing.assert_array_equal(after[name], before[name])  # same arithmetic: exact
    assert not LowerPrimitives()(kg).modified


def test_ensures_no_primitive_is_left() -> None:
    with pytest.raises(PostconditionError, match="'q' is still a primitive op"):
        LowerPrimitives().ensures(_graph())
