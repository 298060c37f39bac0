"""bf16 rounding and the bf16 x bf16 -> fp32 mmul partials and cascade."""

from __future__ import annotations

import numpy as np


def to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest even) and return them as float32."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(nan, np.float32(np.nan), out).astype(np.float32)


def mac_partial_bf16(a_bf16: np.ndarray, b_bf16: np.ndarray) -> np.ndarray:
    """One core's bf16 contribution over its K slice, rounded once to fp32.

    Products of bf16 values are exact in fp32; the slice sum is formed in float64 and rounded
    once to float32 (the core's fp32 accumulator). Cascade partials are then added in fp32 in
    cascade order by :func:`cascade_add_f32`.
    """
    a = np.asarray(a_bf16, dtype=np.float64)  # no copy when the caller holds float64 already
    b = np.asarray(b_bf16, dtype=np.float64)
    return np.matmul(a, b).astype(np.float32)


def cascade_mac_bf16(acc: np.ndarray, a_bf16: np.ndarray, b_bf16: np.ndarray) -> None:
    """``acc += mac_partial_bf16(a, b)`` in place: the core's partial (float64 sums of exact bf16
    products) rounded once to fp32, then added to the fp32 cascade accumulator ``acc`` with fp32
    rounding. The same numbers as :func:`cascade_add_f32` of :func:`mac_partial_bf16`, without
    the intermediate fp32 copy (``np.add`` with ``dtype=float32`` rounds the float64 partial to
    fp32 before it adds)."""
    partial = np.matmul(np.asarray(a_bf16, dtype=np.float64), np.asarray(b_bf16, dtype=np.float64))
    np.add(acc, partial, out=acc, dtype=np.float32, casting="same_kind")


def cascade_add_f32(acc: np.ndarray, partial: np.ndarray) -> np.ndarray:
    """Add a core's fp32 partial to the fp32 cascade accumulator (fp32 rounding)."""
    return np.add(np.asarray(acc, np.float32), np.asarray(partial, np.float32), dtype=np.float32)
