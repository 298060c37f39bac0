"""The pass pipeline: primitive KernelGraph (frontend output) -> hardware KernelGraph.

Contract of every pass (onnx-ir style): it takes the graph, rewrites it in place, returns whether
it changed anything, and leaves a graph that passes :meth:`KernelGraph.validate` and computes the
same numbers. :func:`to_hardware` runs them in order and checks that only hardware ops remain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from codesign.errors import ModelError, UnsupportedError
from codesign.ir.graph import (
    DequantizeLinear,
    Gemm,
    KernelGraph,
    Op,
    QuantizeLinear,
    Reshape,
    TensorType,
    Vector,
)
from codesign.passes import rules
from codesign.sim import vector

Rule = Callable[[KernelGraph, Op], bool]

HARDWARE_OPS = (Gemm, Vector, Reshape)


def apply_rules(kg: KernelGraph, rule_set: Iterable[Rule]) -> bool:
    """Apply the rules to every op until none fires; return whether any did."""
    rule_set = tuple(rule_set)
    changed_any = False
    changed = True
    while changed:
        changed = False
        for op in list(kg.ops):
            if op not in kg.ops:
                continue
            for rule in rule_set:
                if rule(kg, op):
                    changed = changed_any = True
                    break
    return changed_any


def fold_constants(kg: KernelGraph) -> bool:
    """Evaluate ops whose inputs are all constants and replace them by their values.

    A DequantizeLinear of a constant that feeds a MatMul is left alone: the fusion rules need to
    see the integer weight under it.
    """
    changed = False
    for op in list(kg.ops):
        if not all(i == "" or kg.is_const(i) for i in op.inputs):
            continue
        with np.errstate(all="ignore"):  # IEEE overflow, as at run time
            values = _evaluate(kg, op)
        if values is None:
            continue
        for name, v in zip(op.outputs, values, strict=True):
            kg.constants[name] = v
            kg.types[name] = TensorType(tuple(v.shape), kg.types[name].dtype)
        kg.ops.remove(op)
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
    return None


def to_hardware(kg: KernelGraph, source: str = "model") -> KernelGraph:
    """Rewrite a primitive KernelGraph into hardware ops (Gemm, Vector, Reshape), in place.

    A rule that finds the model's values unusable raises :class:`ModelError`; its message gets
    ``source`` (the model file) in front.
    """
    try:
        apply_rules(kg, rules.FUSION_RULES)
    except ModelError as e:  # a quantized GEMM with no exact integer form: name the model
        raise type(e)(f"{source}: {e}") from None
    kg.prune()  # drop the weight dequantisations the fusions consumed before folding constants
    fold_constants(kg)
    try:
        apply_rules(kg, rules.EPILOGUE_RULES)
    except ModelError as e:
        raise type(e)(f"{source}: {e}") from None
    apply_rules(kg, rules.LOWERING_RULES)
    fold_constants(kg)
    kg.prune()
    for op in kg.ops:
        if not isinstance(op, HARDWARE_OPS):
            raise UnsupportedError(
                f"{source}: node {op.name!r} ({type(op).__name__}) could not be mapped to the "
                "hardware: its weight must be a constant of a supported integer or float type"
            )
    for t in kg.outputs:
        if kg.is_const(t):
            raise UnsupportedError(
                f"{source}: graph output {t!r} is a constant; nothing to compute"
            )
    kg.validate()
    return kg
