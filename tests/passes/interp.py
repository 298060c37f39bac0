"""A whole-matrix interpreter of KernelGraphs (primitive and hardware ops), for the passes'
before/after equivalence tests, and the check those tests share."""

from __future__ import annotations

import numpy as np

from codesign.ir.graph import (
    DequantizeLinear,
    DynamicQuantizeLinear,
    Gemm,
    KernelGraph,
    MatMul,
    MatMulInteger,
    QuantizeLinear,
    Vector,
)
from codesign.sim import numerics, vector


def interpret(kg: KernelGraph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate primitive and hardware ops directly (whole-matrix, no schedule)."""
    env = {**kg.constants, **inputs}
    for op in kg.ops:
        xs = [env[i] for i in op.inputs if i]
        if isinstance(op, QuantizeLinear):
            out = (numerics.quantize_linear(*xs, op.dtype, op.axis),)
        elif isinstance(op, DequantizeLinear):
            out = (numerics.dequantize_linear(*xs, op.axis),)
        elif isinstance(op, MatMul):
            out = ((xs[0].astype(np.float64) @ xs[1].astype(np.float64)).astype(np.float32),)
        elif isinstance(op, MatMulInteger):
            a, b, za, zb = xs
            out = (
                numerics.int_matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb).astype(
                    np.int32
                ),
            )
        elif isinstance(op, DynamicQuantizeLinear):
            out = vector.apply("dynamic_quantize", xs, {})
        elif isinstance(op, Vector):
            out = vector.apply(op.fn, xs, dict(op.attrs))
        elif isinstance(op, Gemm):
            w = kg.const(op.weight)
            if op.dtype == "bf16":
                out = (
                    numerics.reference_gemm_bf16(
                        xs[0],
                        w,
                        w.shape[0],
                        bias=kg.const(op.bias) if op.bias else None,
                        relu=op.relu,
                    ),
                )
            else:
                r = op.requant
                out = (
                    numerics.reference_gemm_int(
                        xs[0],
                        w,
                        op.dtype,
                        bias=kg.const(op.bias) if op.bias else None,
                        a_zero_point=xs[1] if len(xs) > 1 else None,
                        colsum=kg.const(op.colsum) if op.colsum else None,
                        acc_shift=op.acc_shift,
                        relu=op.relu,
                        requant=None
                        if r is None
                        else (
                            kg.const(r.multiplier),
                            kg.const(r.shift),
                            r.zero_point,
                            r.dtype,
                            r.rounding,
                        ),
                    ),
                )
        else:
            out = (xs[0].reshape(op.shape),)
        env.update(zip(op.outputs, out, strict=True))
    return {t: env[t] for t in kg.outputs}


def kinds(kg: KernelGraph) -> list[str]:
    """The graph's ops as a list of kinds, a vector op by its function."""
    return [op.kind if not isinstance(op, Vector) else op.fn for op in kg.ops]
