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
    """
    x = np.asarray(x, dtype=np.float32)
    s = _along(np.asarray(scale, dtype=np.float32), x.ndim, axis)
    z = _along(np.asarray(zero_point).astype(np.float32), x.ndim, axis)
    y = np.rint(x / s) + z
    lo, hi = int_range(dtype)
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
    """ONNX DynamicQuantizeLinear: uint8 quantisation with a range that includes zero."""
    x = np.asarray(x, dtype=np.float32)
    lo = np.float32(min(0.0, float(x.min()) if x.size else 0.0))
    hi = np.float32(max(0.0, float(x.max()) if x.size else 0.0))
    scale = np.float32((hi - lo) / np.float32(255.0))
    if scale == 0:
        scale = np.float32(1.0)
    zp = np.uint8(np.clip(np.rint(np.float32(0.0) - lo / scale), 0, 255))
    return quantize_linear(x, scale, zp, "uint8"), scale, zp
