"""D2MoE matryoshka weight quantisation (MWQ): nested bit-planes per group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.sim.numerics.integer import saturate
from codesign.sim.numerics.rounding import RoundingMode, round_shift


def _group_params(p: np.ndarray, k: int, group_size: int, what: str) -> np.ndarray:
    """Repeat per-group values ``p[..., k // group_size]`` along the last axis to length ``k``."""
    p = np.asarray(p)
    n_groups = k // group_size
    if p.ndim == 0:
        return p
    if p.shape[-1] != n_groups:
        raise ValueError(f"{what} must have {n_groups} groups on its last axis, not {p.shape[-1]}")
    return np.repeat(p, group_size, axis=-1)


def mwq_reconstruct(
    base: np.ndarray,
    planes: np.ndarray,
    zero_point: np.ndarray | int,
    scales: np.ndarray,
    n_planes: np.ndarray | int,
    shift: int,
    out_dtype: str,
    *,
    group_size: int,
    rounding: RoundingMode = "conv_even",
) -> np.ndarray:
    """Integer MWQ reconstruction, the datapath of the PL MWQ plane decoder.

    D2MoE's nested weight ``W^(b1+k) = s_0 (Q - z) + sum_{i<k} s_{i+1} P_i`` (REFERENCES.md s6)
    with every scale a fixed-point integer in units of ``2**-shift`` output quanta::

        acc = scales[0] * (base - zero_point) + sum_{i < n_planes} scales[1 + i] * (2 * planes[i] - 1)
        out = saturate(round_shift(acc, shift, rounding), out_dtype)

    Shapes (``K`` weights on the last axis in groups of ``group_size``, ``G = K // group_size``):

    - ``base``: (..., K) unsigned base codes (b1 bits);
    - ``planes``: (P, ..., K) residual plane bits, 1 for +1 and 0 for -1 (``P`` >= every
      ``n_planes``; ``P`` may be 0);
    - ``zero_point``: (..., G) or a scalar, the base zero point per group;
    - ``scales``: (1 + P, ..., G) integer scales per group: ``scales[0]`` for the base,
      ``scales[1 + i]`` for plane ``i``;
    - ``n_planes``: (..., G) or a scalar in [0, P], the planes used per group (the precision
      ``b1 + n_planes``; lower precisions are prefixes of higher ones).

    Computed exactly in int64; the result has the numpy dtype of ``out_dtype``.
    """
    base = np.asarray(base, dtype=np.int64)
    planes = np.asarray(planes, dtype=np.int64)
    scales = np.asarray(scales, dtype=np.int64)
    k = base.shape[-1]
    if group_size <= 0 or k % group_size:
        raise ValueError(f"group_size must be a positive divisor of {k}, not {group_size}")
    p = planes.shape[0] if planes.ndim == base.ndim + 1 else 0
    if planes.ndim == base.ndim + 1 and planes.shape[1:] != base.shape:
        raise ValueError(f"planes must have shape (P, *{base.shape}), not {planes.shape}")
    if scales.shape[0] != 1 + p:
        raise ValueError(f"scales must have 1 + P = {1 + p} rows, not {scales.shape[0]}")
    used = np.asarray(n_planes, dtype=np.int64)
    if np.any(used < 0) or np.any(used > p):
        raise ValueError(f"n_planes must lie in [0, {p}], not {used.min()}..{used.max()}")
    zp = _group_params(np.asarray(zero_point, dtype=np.int64), k, group_size, "zero_point")
    used = _group_params(used, k, group_size, "n_planes")
    acc = _group_params(scales[0], k, group_size, "scales") * (base - zp)
    for i in range(p):
        s_i = _group_params(scales[1 + i], k, group_size, "scales")
        acc = acc + np.where(used > i, s_i * (2 * planes[i] - 1), 0)
    return saturate(round_shift(acc, shift, rounding), out_dtype)


@dataclass(frozen=True, eq=False)
class MWQCode:
    """A matryoshka-quantised weight matrix (float scales), as :func:`mwq_encode` fits it.

    ``base`` (..., K) uint8 base codes; ``planes`` (P, ..., K) uint8 plane bits (1 is +1, 0 is
    -1); ``zero_point`` (..., G) uint8 and ``scales`` (1 + P, ..., G) float32 per group of
    ``group_size`` weights on the last axis; ``base_bits`` is b1.
    """

    base: np.ndarray
    planes: np.ndarray
    zero_point: np.ndarray
    scales: np.ndarray
    base_bits: int
    group_size: int

    @property
    def max_planes(self) -> int:
        """Number of residual planes stored (the highest precision is ``base_bits + max_planes``)."""
        return int(self.planes.shape[0])


def mwq_encode(w: np.ndarray, base_bits: int, n_planes: int, group_size: int) -> MWQCode:
    """Fit a matryoshka (MWQ) code to float weights ``w`` (..., K), grouped along the last axis.

    Base: asymmetric ``base_bits`` quantisation per group with the min/max range (D2MoE fits
    ``s, z`` to the output error with calibration data; codesign has none here, so this is the
    data-free variant): ``s = (max - min) / (2**b1 - 1)``, ``z = round_half_even(-min / s)``,
    ``Q = clip(round_half_even(w / s) + z)``. Each plane ``i`` quantises the remaining residual
    ``r`` to ``sign(r)`` (``r >= 0`` gives +1) with the least-squares scale ``mean(|r|)`` of the
    group. Lower precisions are prefixes: :func:`mwq_dequantize` with fewer planes.
    """
    w = np.asarray(w, dtype=np.float64)
    k = w.shape[-1]
    if not 1 <= base_bits <= 8:
        raise ValueError(f"base_bits must lie in [1, 8], not {base_bits}")
    if n_planes < 0:
        raise ValueError(f"n_planes must be >= 0, not {n_planes}")
    if group_size <= 0 or k % group_size:
        raise ValueError(f"group_size must be a positive divisor of {k}, not {group_size}")
    g = w.reshape(*w.shape[:-1], k // group_size, group_size)
    lo = np.minimum(g.min(axis=-1), 0.0)
    hi = np.maximum(g.max(axis=-1), 0.0)
    qmax = 2**base_bits - 1
    s = (hi - lo) / qmax
    s = np.where(s > 0, s, 1.0)
    z = np.clip(np.rint(-lo / s), 0, qmax)
    q = np.clip(np.rint(g / s[..., None]) + z[..., None], 0, qmax)
    approx = (q - z[..., None]) * s[..., None]
    planes = []
    scales = [s]
    for _ in range(n_planes):
        r = g - approx
        bit = (r >= 0).astype(np.int64)
        s_i = np.abs(r).mean(axis=-1)
        approx = approx + s_i[..., None] * (2 * bit - 1)
        planes.append(bit.reshape(w.shape))
        scales.append(s_i)
    plane_arr = (
        np.stack(planes).astype(np.uint8) if planes else np.zeros((0, *w.shape), dtype=np.uint8)
    )
    return MWQCode(
        base=q.reshape(w.shape).astype(np.uint8),
        planes=plane_arr,
        zero_point=z.astype(np.uint8),
        scales=np.stack(scales).astype(np.float32),
        base_bits=base_bits,
        group_size=group_size,
    )


def mwq_dequantize(code: MWQCode, n_planes: int | None = None) -> np.ndarray:
    """Float reconstruction ``s_0 (Q - z) + sum_{i < n_planes} s_{i+1} (2 P_i - 1)`` (float32).

    ``n_planes`` defaults to every stored plane; fewer planes give the nested lower precision.
    """
    p = code.max_planes if n_planes is None else n_planes
    if not 0 <= p <= code.max_planes:
        raise ValueError(f"n_planes must lie in [0, {code.max_planes}], not {p}")
    k = code.base.shape[-1]
    gs = code.group_size
    sc = code.scales.astype(np.float64)
    zp = _group_params(code.zero_point.astype(np.float64), k, gs, "zero_point")
    w = _group_params(sc[0], k, gs, "scales") * (code.base.astype(np.float64) - zp)
    for i in range(p):
        w = w + _group_params(sc[1 + i], k, gs, "scales") * (2.0 * code.planes[i] - 1.0)
    return w.astype(np.float32)


def mwq_integer_scales(
    scales: np.ndarray, out_scale: float, frac_bits: int, scale_width: int = 16
) -> np.ndarray:
    """Express float MWQ scales as the decoder's integer scales.

    ``round_half_even(scales / out_scale * 2**frac_bits)`` saturated to ``scale_width``-bit signed
    integers (int64 array), so that :func:`mwq_reconstruct` with ``shift=frac_bits`` gives the
    weights in units of ``out_scale``.
    """
    if out_scale <= 0 or not np.isfinite(out_scale):
        raise ValueError(f"out_scale must be finite and positive, not {out_scale}")
    v = np.rint(np.asarray(scales, dtype=np.float64) / out_scale * 2.0**frac_bits)
    lim = 2 ** (scale_width - 1)
    return np.clip(v, -lim, lim - 1).astype(np.int64)
