"""bf16 rounding and the bf16 x bf16 -> fp32 mmul partials and cascade."""

from __future__ import annotations

import numpy as np


def to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest even) and return them as float32.
    Every NaN becomes the canonical quiet NaN."""
    x32 = np.asarray(x, dtype=np.float32)
    bits = x32.reshape(-1).view(np.uint32)  # 1-D: numpy turns 0-d results into scalars
    # uint32 arithmetic: only NaN bit patterns (>= 0xFFFF8000) can wrap, and NaNs are replaced
    rounded = (bits >> 16) & 1
    rounded += 0x7FFF
    rounded += bits
    rounded &= 0xFFFF0000
    out = rounded.view(np.float32)
    nan = np.isnan(x32.reshape(-1))
    if nan.any():
        out[nan] = np.float32(np.nan)
    return out.reshape(x32.shape)


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


#: columns of the accumulator one pass of :func:`cascade_gemm_bf16` holds: a [rows, 256] float64
#: partial and its fp32 accumulator stay in a core's L2 while every core's partial is added
CASCADE_COLUMNS = 256


def cascade_gemm_bf16(a_cores: np.ndarray, b_chunks: list[np.ndarray]) -> np.ndarray:
    """The fp32 accumulator after every core of a cascade, in order, added its partial:
    ``acc = cascade_mac_bf16(acc, a_cores[i], b[i])`` for i = 0, 1, ... from a zero ``acc``.

    ``a_cores`` [cores, rows, k] float64 (bf16 values), core i's A slice; ``b_chunks`` the cores'
    B slices [cores, k, cols] cut along the columns into contiguous pieces of
    :data:`CASCADE_COLUMNS` (:func:`cascade_columns`). Columns never mix, so the accumulator is
    formed piece by piece (the same numbers, with the partials in cache). Returns [rows, cols]
    float32."""
    rows = a_cores.shape[1]
    out = np.empty((rows, sum(b.shape[-1] for b in b_chunks)), dtype=np.float32)
    j = 0
    for b in b_chunks:
        w = b.shape[-1]
        acc = np.zeros((rows, w), dtype=np.float32)
        partial = np.empty((rows, w), dtype=np.float64)
        for a_core, b_core in zip(a_cores, b, strict=True):
            np.matmul(a_core, b_core, out=partial)
            np.add(acc, partial, out=acc, dtype=np.float32, casting="same_kind")
        out[:, j : j + w] = acc
        j += w
    return out


def cascade_columns(b_cores: np.ndarray) -> list[np.ndarray]:
    """``b_cores`` [cores, k, cols] as the contiguous column pieces
    :func:`cascade_gemm_bf16` takes."""
    cols = b_cores.shape[-1]
    return [
        np.ascontiguousarray(b_cores[..., j : j + CASCADE_COLUMNS])
        for j in range(0, cols, CASCADE_COLUMNS)
    ]


def cascade_add_f32(acc: np.ndarray, partial: np.ndarray) -> np.ndarray:
    """Add a core's fp32 partial to the fp32 cascade accumulator (fp32 rounding)."""
    return np.add(np.asarray(acc, np.float32), np.asarray(partial, np.float32), dtype=np.float32)
