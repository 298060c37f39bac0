"""Integer dtypes, saturation, acc32 wrap and fixed-point requantisation."""

from __future__ import annotations

import numpy as np

from codesign.ir.dtypes import DTYPES
from codesign.sim.numerics.rounding import RoundingMode, round_shift

#: Integer dtypes by name, with their saturation range.
#: (from the dtype registry, codesign.ir.dtypes: the integer types up to 32 bits)
INT_DTYPES: dict[str, np.dtype] = {
    n: d.numpy for n, d in DTYPES.items() if d.integer and d.bits <= 32
}

_RANGES: dict[str, tuple[int, int]] = {n: DTYPES[n].range for n in INT_DTYPES}

#: Largest |sum| for which a float64 (float32) BLAS matmul of integers is exact.
EXACT_F64 = 2**53
EXACT_F32 = 2**24


def int_range(dtype: str) -> tuple[int, int]:
    """Return the inclusive (min, max) of the integer dtype named ``dtype``."""
    try:
        return _RANGES[dtype]
    except KeyError:
        raise ValueError(f"integer dtype must be one of {sorted(_RANGES)}, not {dtype!r}") from None


def saturate(x: np.ndarray, dtype: str) -> np.ndarray:
    """Clamp ``x`` to the range of ``dtype`` and return it as that numpy dtype."""
    lo, hi = int_range(dtype)
    return np.clip(x, lo, hi).astype(INT_DTYPES[dtype])


def wrap(x: np.ndarray, dtype: str) -> np.ndarray:
    """Two's-complement wrap of an integer array into ``dtype``'s bit width (ONNX Cast between
    integer types, including the sub-byte int4/uint4 held in int8/uint8), as that numpy dtype."""
    lo, hi = int_range(dtype)
    span = hi - lo + 1
    v = (np.asarray(x, dtype=np.int64) - lo) % span + lo
    return v.astype(INT_DTYPES[dtype])


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of an integer array into int32 (the acc32 lane behaviour)."""
    return np.asarray(x, dtype=np.int64).astype(np.int32)


def quantize_multiplier(real: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Express positive real multipliers as ``multiplier * 2**-shift``.

    ``multiplier`` is an int32 in [2**30, 2**31) and ``shift`` an int in [0, 62]. Multipliers too
    small to represent with shift 62 become (0, 0) (every output is then the zero point);
    multipliers >= 2**31 are rejected because the product would not fit in 64 bits.
    """
    r = np.atleast_1d(np.asarray(real, dtype=np.float64))
    if np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise ValueError("requantisation multipliers must be finite and positive")
    mant, exp = np.frexp(r)  # r = mant * 2**exp, mant in [0.5, 1)
    m = np.round(mant * 2.0**31).astype(np.int64)
    carry = m == 2**31
    m = np.where(carry, m // 2, m)
    exp = exp + carry
    shift = 31 - exp
    if np.any(shift < 0):
        raise ValueError("requantisation multiplier must be below 2**31")
    tiny = shift > 62
    m = np.where(tiny, 0, m)
    shift = np.where(tiny, 0, shift)
    return m.astype(np.int32), shift.astype(np.int64)


def requantize(
    acc: np.ndarray,
    multiplier: np.ndarray | int,
    shift: np.ndarray | int,
    zero_point: int,
    out_dtype: str,
    *,
    rounding: RoundingMode = "conv_even",
    relu: bool = False,
) -> np.ndarray:
    """Requantise int32 accumulators: ``saturate(round_shift(acc * multiplier, shift) + zp)``.

    ``multiplier`` and ``shift`` broadcast along the last axis (per output channel) or are scalars.
    With ``relu`` the result is also clamped below at the zero point, which is exactly
    ``quantize(relu(dequantize(acc)))``.
    """
    prod = np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    y = round_shift(prod, shift, rounding) + np.int64(zero_point)
    if relu:
        y = np.maximum(y, zero_point)
    return saturate(y, out_dtype)


def _along(v: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    """Shape a per-axis vector (or scalar) so it broadcasts along ``axis`` of an ndim tensor."""
    if v.ndim == 0 or axis is None:
        return v
    axis = axis % ndim
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return v.reshape(shape)
