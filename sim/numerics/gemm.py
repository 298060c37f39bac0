"""Integer and bf16 GEMM: products, accumulators, epilogues and whole-matrix references."""

from __future__ import annotations

import numpy as np

from codesign.sim.numerics.bf16 import cascade_add_f32, mac_partial_bf16, to_bf16
from codesign.sim.numerics.integer import EXACT_F64, requantize, wrap_int32
from codesign.sim.numerics.rounding import round_shift


def int_matmul(a: np.ndarray, b: np.ndarray, *, bound: int | None = None) -> np.ndarray:
    """Exact integer matrix product (batched over leading axes) as int64.

    Uses float32 BLAS while every partial sum stays below 2**24 and float64 BLAS below 2**53
    (integer sums are exact in both there); the bound is
    computed from the operand magnitudes unless the caller passes ``bound`` (an upper bound of
    max|a| * max|b| * K), and an exact int64 product is used above it. Operands may already be
    float64 arrays holding integers (no copy is made then).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if bound is None:
        k = a.shape[-1]
        amax = int(np.abs(a).max(initial=0))
        bmax = int(np.abs(b).max(initial=0))
        bound = amax * bmax * max(k, 1)
    if bound < EXACT_F64:
        return np.matmul(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)).astype(
            np.int64
        )
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def mac_partial_int(a: np.ndarray, b: np.ndarray, bound: int | None = None) -> np.ndarray:
    """One AIE-ML core's contribution: the exact integer product of its A and B tiles (int64);
    the caller adds it into the accumulator with :func:`accumulate`."""
    return int_matmul(a, b, bound=bound)


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) in the dtype of x."""
    return np.maximum(x, np.zeros((), dtype=x.dtype))


#: Accumulator lane width of the AIE-ML integer mmul modes codesign uses: int8 x int8 into acc32,
#: int16 x int16 into acc64 (AM020; the AIE API's accum<acc32>/accum<acc64>).
ACCUMULATOR_BITS = {"int8": 32, "int16": 64}


def accumulate(acc: np.ndarray, partial: np.ndarray, dtype: str) -> np.ndarray:
    """Add a partial sum into the accumulator of an integer mmul mode (wrapping at its width)."""
    y = np.asarray(acc, dtype=np.int64) + np.asarray(partial, dtype=np.int64)
    return wrap_int32(y).astype(np.int64) if ACCUMULATOR_BITS[dtype] == 32 else y


def acc_preshift(bound: int) -> int:
    """The SRS shift that brings accumulators of magnitude <= ``bound`` into int32."""
    return max(0, int(bound).bit_length() - 31)


def gemm_epilogue_int(
    acc: np.ndarray,
    *,
    dtype: str = "int8",
    bias: np.ndarray | None = None,
    a_zero_point: np.ndarray | int | None = None,
    colsum: np.ndarray | None = None,
    acc_shift: int = 0,
    relu: bool = False,
    requant: tuple[np.ndarray, np.ndarray, int, str, str] | None = None,
) -> np.ndarray:
    """The integer GEMM epilogue, applied to accumulators [..., N] of mmul mode ``dtype``.

    ``acc' = acc + bias - a_zero_point * colsum`` in the accumulator (acc32 wraps; acc64 does not
    overflow for any K codesign accepts), then SRS by ``acc_shift`` (rounding ``conv_even``,
    saturating to int32; acc32 has ``acc_shift`` 0), then ReLU (clamp at 0), then ``requant =
    (multiplier, shift, zero_point, dtype, rounding)`` if given; without it the int32 value is
    the result.
    """
    y = np.asarray(acc, dtype=np.int64)
    if bias is not None:
        y = accumulate(y, np.asarray(bias, dtype=np.int64), dtype)
    if colsum is not None and a_zero_point is not None:
        za = np.int64(np.asarray(a_zero_point).reshape(-1)[0])
        y = accumulate(y, -za * np.asarray(colsum, dtype=np.int64), dtype)
    if acc_shift:
        y = round_shift(y, acc_shift, "conv_even")
    y = np.clip(y, -(2**31), 2**31 - 1)
    if relu:
        y = np.maximum(y, 0)
    if requant is None:
        return y.astype(np.int32)
    mult, shift, zp, out_dtype, rounding = requant
    return requantize(y, mult, shift, zp, out_dtype, rounding=rounding)  # type: ignore[arg-type]


def gemm_epilogue_bf16(
    acc: np.ndarray, *, bias: np.ndarray | None = None, relu: bool = False
) -> np.ndarray:
    """The bf16 GEMM epilogue on fp32 accumulators: fp32 bias add, then optional ReLU."""
    y = np.asarray(acc, dtype=np.float32)
    if bias is not None:
        y = (y + np.asarray(bias, dtype=np.float32)).astype(np.float32)
    return relu_f32(y) if relu else y


def relu_f32(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0)).astype(np.float32)


def reference_gemm_int(a: np.ndarray, w: np.ndarray, dtype: str = "int8", **epilogue) -> np.ndarray:
    """Golden integer GEMM: whole-matrix exact product in the accumulator of ``dtype``, then the
    epilogue."""
    acc = accumulate(np.zeros((), dtype=np.int64), int_matmul(a, w), dtype)
    return gemm_epilogue_int(acc, dtype=dtype, **epilogue)


def reference_gemm_bf16(
    a: np.ndarray,
    w: np.ndarray,
    k_slice: int,
    *,
    bias: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    """Golden bf16 GEMM: operands rounded to bf16; K cut into ``k_slice``-wide core slices, each
    summed exactly and rounded to fp32, the slices added in fp32 in K order (the cascade order)."""
    a16, w16 = to_bf16(a), to_bf16(w)
    K = a16.shape[-1]
    acc = np.zeros(a16.shape[:-1] + (w16.shape[1],), dtype=np.float32)
    for k0 in range(0, K, k_slice):
        acc = cascade_add_f32(
            acc, mac_partial_bf16(a16[..., k0 : k0 + k_slice], w16[k0 : k0 + k_slice])
        )
    return gemm_epilogue_bf16(acc, bias=bias, relu=relu)
