"""Primitives left over after the fusions: QuantizeLinear, DequantizeLinear and
DynamicQuantizeLinear become element-wise :class:`Vector` ops (same arithmetic, the numerics
package's quantize/dequantize)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from codesign.ir.graph import (
    DequantizeLinear,
    DynamicQuantizeLinear,
    KernelGraph,
    Op,
    QuantizeLinear,
    Vector,
)
from codesign.passes.base import PostconditionError, RewritePass, Rule
from codesign.passes.match import _swap


def primitive_to_vector(kg: KernelGraph, op: Op) -> bool:
    """Quantize/Dequantize/DynamicQuantize left over -> element-wise vector ops."""
    if isinstance(op, QuantizeLinear):
        new = Vector(
            op.name,
            op.inputs,
            op.outputs,
            fn="quantize",
            attrs=(("axis", op.axis), ("dtype", op.dtype)),
        )
    elif isinstance(op, DequantizeLinear):
        new = Vector(op.name, op.inputs, op.outputs, fn="dequantize", attrs=(("axis", op.axis),))
    elif isinstance(op, DynamicQuantizeLinear):
        new = Vector(op.name, op.inputs, op.outputs, fn="dynamic_quantize")
    else:
        return False
    _swap(kg, op, new)
    return True


@dataclass(frozen=True)
class LowerPrimitives(RewritePass):
    """Quantize/Dequantize/DynamicQuantize -> vector ops; none is left after it."""

    name: ClassVar[str] = "lower-primitives"

    def rules(self) -> tuple[Rule, ...]:
        return (primitive_to_vector,)

    def ensures(self, kg: KernelGraph) -> None:
        for op in kg.ops:
            if isinstance(op, QuantizeLinear | DequantizeLinear | DynamicQuantizeLinear):
                raise PostconditionError(f"{self.name}: {op.name!r} is still a primitive op")
