"""fold-constants and prune on their own, bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.ir.graph import (
    DequantizeLinear,
    DynamicQuantizeLinear,
    KernelGraph,
    QuantizeLinear,
    Reshape,
    TensorType,
    Vector,
)
from codesign.passes.base import PostconditionError
from codesign.passes.fold import FoldConstants, Prune
from tests.passes.interp import interpret, kinds


def test_fold_constants_folds_a_chain_in_one_walk() -> None:
    kg = KernelGraph(inputs=["x"], outputs=["y"])
    kg.types.update(
        x=TensorType((2, 3), "float32"),
        r=TensorType((2, 3), "float32"),
        s=TensorType((2, 3), "float32"),
        q=TensorType((2, 3), "int8"),
        d=TensorType((2, 3), "float32"),
        y=TensorType((2, 3), "float32"),
    )
    kg.add_const("c", np.arange(6, dtype=np.float32) - 2.5)
    kg.add_const("k", np.float32(0.25))
    kg.add_const("sc", np.float32(0.1))
    kg.add_const("zp", np.int8(1))
    kg.ops = [
        Reshape("r", ("c",), ("r",), shape=(2, 3)),
        Vector("s", ("r", "k"), ("s",), fn="mul"),
        QuantizeLinear("q", ("s", "sc", "zp"), ("q",), dtype="int8"),
        DequantizeLinear("d", ("q", "sc", "zp"), ("d",)),
        Vector("y", ("x", "d"), ("y",), fn="add"),
    ]
    x = {"x": np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)}
    before = interpret(kg, x)["y"]
    assert FoldConstants()(kg).modified
    kg.validate()
    assert kinds(kg) == ["add"] and kg.is_const("d")
    np.testing.assert_array_equal(interpret(kg, x)["y"], before)
    assert not FoldConstants()(kg).modified


def test_fold_constants_ensures() -> None:
    kg = KernelGraph(inputs=[], outputs=["y"])
    kg.add_const("c", np.ones(3, np.float32))
    kg.types["y"] = TensorType((3,), "float32")
    kg.ops = [Vector("y", ("c",), ("y",), fn="relu")]
    with pytest.raises(PostconditionError, match="'y' reads only constants"):
        FoldConstants().ensures(kg)


def test_prune() -> None:
    kg = KernelGraph(inputs=["x"], outputs=["y", "yd"])
    kg.types.update(
        x=TensorType((3,), "float32"),
        y=TensorType((3,), "float32"),
        dead=TensorType((3,), "float32"),
        yd=TensorType((3,), "uint8"),
        s=TensorType((), "float32"),
        z=TensorType((), "uint8"),
    )
    kg.add_const("unused", np.ones(3, np.float32))
    kg.add_const("c", np.full(3, 2, np.float32))
    kg.ops = [
        Vector("y", ("x",), ("y",), fn="relu"),
        Vector("dead", ("x", "c"), ("dead",), fn="add"),
        DynamicQuantizeLinear("dyn", ("x",), ("yd", "s", "z")),  # kept for one output of three
    ]
    x = {"x": np.array([-1, 0.5, 2], np.float32)}
    before = interpret(kg, x)
    assert Prune()(kg).modified
    kg.validate()
    assert kinds(kg) == ["relu", "dynamic_quantize"]
    assert not kg.constants and "dead" not in kg.types and "s" in kg.types
    after = interpret(kg, x)
    for name in kg.outputs:
        np.testing.assert_array_equal(after[name], before[name])
    assert not Prune()(kg).modified
