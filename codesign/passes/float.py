"""Float GEMMs: ``MatMul(x, W_float)`` -> a bf16 :class:`Gemm` (operands rounded to bf16, fp32
accumulation), refusing a weight that bf16 cannot hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codesign.errors import ModelError
from codesign.ir.graph import Gemm, KernelGraph, MatMul, Op
from codesign.passes.base import RewritePass, Rule
from codesign.passes.match import _swap
from codesign.sim import numerics

#: Largest finite bfloat16 value: float weights beyond it would become infinite on the AIE.
BF16_MAX = float(np.float32(np.uint32(0x7F7F0000).view(np.float32)))


def float_matmul_to_gemm(kg: KernelGraph, op: Op) -> bool:
    """``MatMul(x, W)`` with a float constant W -> bf16 GEMM."""
    if not (isinstance(op, MatMul) and kg.is_const(op.inputs[1])):
        return False
    w = kg.const(op.inputs[1])
    if not np.issubdtype(w.dtype, np.floating):
        return False
    w16 = numerics.to_bf16(w.astype(np.float32))
    if not np.all(np.isfinite(w16)):
        big = float(np.abs(w.astype(np.float64)).max())
        raise ModelError(
            f"node {op.name!r}: float weight {op.inputs[1]!r} must fit bf16 "
            f"(|w| < {BF16_MAX:.4g}), not {big:.4g}"
        )
    weight = kg.add_const(f"{op.name}/weight", w16)
    _swap(kg, op, Gemm(op.name, op.inputs[:1], op.outputs, weight=weight, dtype="bf16"))
    return True


@dataclass(frozen=True)
class FloatGemm(RewritePass):
    """Float MatMul with a constant weight -> bf16 GEMM."""

    name: ClassVar[str] = "float-gemm"

    def rules(self) -> tuple[Rule, ...]:
        return (float_matmul_to_gemm,)
