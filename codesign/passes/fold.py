"""Constant folding and cleanup: evaluate ops whose inputs are all constants, and drop what no
graph output needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codesign.ir.graph import (
    DequantizeLinear,
    KernelGraph,
    Op,
    QuantizeLinear,
    Reshape,
    TensorType,
    Vector,
    numpy_dtype,
)
from codesign.ir.nonlinear import Nonlinear, RowNorm
from codesign.kinds import movement
from codesign.kinds.movement import Movement
from codesign.passes.base import Pass, PassResult, PostconditionError
from codesign.sim import nonlinear, vector

#: Op types :func:`fold_constants` evaluates when all their inputs are constants.
FOLDABLE = (Reshape, Vector, QuantizeLinear, DequantizeLinear, Nonlinear, RowNorm, Movement)


def fold_constants(kg: KernelGraph) -> bool:
    """Evaluate ops whose inputs are all constants and replace them by their values.

    One walk in graph order folds a whole chain of constant ops: an op's inputs are folded
    before it is reached.
    """
    changed = False
    for op in kg.ops:
        if not all(i == "" or kg.is_const(i) for i in op.inputs):
            continue
        with np.errstate(all="ignore"):  # IEEE overflow, as at run time
            values = _evaluate(kg, op)
        if values is None:
            continue
        for name, v in zip(op.outputs, values, strict=True):
            kg.constants[name] = v
            kg.types[name] = TensorType(tuple(v.shape), kg.types[name].dtype)
        kg.remove(op)
        changed = True
    return changed


def _evaluate(kg: KernelGraph, op: Op) -> tuple[np.ndarray, ...] | None:
    xs = [kg.const(i) for i in op.inputs if i]
    if isinstance(op, Reshape):
        return (xs[0].reshape(op.shape),)
    if isinstance(op, Vector):
        return vector.apply(op.fn, xs, dict(op.attrs))
    if isinstance(op, QuantizeLinear):
        return vector.apply("quantize", xs, {"axis": op.axis, "dtype": op.dtype})
    if isinstance(op, DequantizeLinear):
        return vector.apply("dequantize", xs, {"axis": op.axis})
    if isinstance(op, Nonlinear | RowNorm):
        fns = nonlinear.ELEMENTWISE if isinstance(op, Nonlinear) else nonlinear.ROWWISE
        y = nonlinear.apply(fns, op.fn, xs, dict(op.attrs))
        return (np.asarray(y).astype(numpy_dtype(kg.types[op.outputs[0]].dtype), copy=False),)
    if isinstance(op, Movement):
        out = kg.types[op.outputs[0]].shape
        return (movement.apply(op.fn, xs, out, op.axis, op.starts, op.steps),)
    return None


@dataclass(frozen=True)
class FoldConstants(Pass):
    """Ops of the :data:`FOLDABLE` types with constant inputs -> constants."""

    name: ClassVar[str] = "fold-constants"

    def call(self, kg: KernelGraph) -> PassResult:
        return PassResult(fold_constants(kg))

    def ensures(self, kg: KernelGraph) -> None:
        for op in kg.ops:
            if isinstance(op, FOLDABLE) and all(i == "" or kg.is_const(i) for i in op.inputs):
                raise PostconditionError(f"{self.name}: {op.name!r} reads only constants")


@dataclass(frozen=True)
class Prune(Pass):
    """Drop ops no graph output needs and constants nothing reads."""

    name: ClassVar[str] = "prune"

    def call(self, kg: KernelGraph) -> PassResult:
        return PassResult(kg.prune())

    def ensures(self, kg: KernelGraph) -> None:
        for op in kg.ops:
            if not any(kg.num_consumers(t) or kg.is_graph_output(t) for t in op.outputs):
                raise PostconditionError(f"{self.name}: nothing reads the outputs of {op.name!r}")
