"""ONNX QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear in float32."""

from __future__ import annotations

import numpy as np

from codesign.sim.numerics.integer import INT_DTYPES, _along, int_range


def quantize_linear(
    x: np.ndarray,
    scale: np.ndarray | float,
    zero_point: np.ndarray | int,
    dtype: str,
    axis: int | None = None,
) -> np.ndarray:
    """ONNX QuantizeLinear: ``saturate(round_half_even(x / scale) + zero_point)`` in float32.

    With ``axis`` the 1-D ``scale``/``zero_point`` apply along that axis of ``x``.

    Non-finite inputs are defined, not left to numpy's float-to-int cast (undefined for NaN):
    +inf saturates to the type's maximum, -inf to its minimum, and NaN (of either sign) becomes
    the type's minimum (-128 for int8, 0 for uint8), which is what onnxruntime's QuantizeLinear
    gives (checked in tests/sim/test_nan_quantize.py). codesign's quantize runs as its own
    vector op, so this definition is the one the hardware path computes too.
    """
    x = np.asarray(x, dtype=np.float32)
    s = _along(np.asarray(scale, dtype=np.float32), x.ndim, axis)
    z = _along(np.asarray(zero_point).astype(np.float32), x.ndim, axis)
    with np.errstate(invalid="ignore", over="ignore"):  # inf / s and NaN are defined below
        y = np.rint(x / s) + z
    lo, hi = int_range(dtype)
    y = np.where(np.isnan(y), np.float32(lo), y)
    return np.clip(y, lo, hi).astype(INT_DTYPES[dtype])


def dequantize_linear(
    q: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int, axis: int | None = None
) -> np.ndarray:
    """ONNX DequantizeLinear: ``(q - zero_point) * scale`` in float32."""
    q = np.asarray(q)
    s = _along(np.asarray(scale, dtype=np.float32), q.ndim, axis)
    z = _along(np.asarray(zero_point).astype(np.int64), q.ndim, axis)
    return ((q.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)


def dynamic_quantize_linear(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """ONNX DynamicQuantizeLinear: uint8 quantisation with a range that includes zero.

    As onnxruntime: NaN elements are left out of the range (and quantize to 0); an infinite
    element makes the scale infinite, finite elements then quantize to the zero point (0 for
    +inf, 255 for -inf) and the infinite ones to 0.
    """
    x = np.asarray(x, dtype=np.float32)
    finite_or_inf = x[~np.isnan(x)]
    lo = np.float32(min(0.0, float(finite_or_inf.min()) if finite_or_inf.size else 0.0))
    hi = np.float32(max(0.0, float(finite_or_inf.max()) if finite_or_inf.size else 0.0))
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.float32((hi - lo) / np.float32(255.0))
    if scale == 0:
        scale = np.float32(1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        zp_f = np.rint(np.float32(0.0) - lo / scale)
    # -inf in x gives -(-inf) / inf = NaN here; onnxruntime clamps with min(255, NaN) = 255
    zp = np.uint8(np.clip(np.nan_to_num(zp_f, nan=255.0), 0, 255))
    return quantize_linear(x, scale, zp, "uint8"), scale, zp
