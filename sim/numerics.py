"""The one definition of codesign's arithmetic.

Everything that computes numbers the hardware computes (the functional simulator, the cocotb
benches of the RTL blocks, the HLS csim and the AIE x86 runs) is checked bit for bit against the
functions here, and these functions are checked against onnxruntime.

Conventions:

- Integer tensors are numpy integer arrays; functions never silently change their width except
  where the docstring says so.
- AIE-ML accumulators (acc32) are two's-complement 32-bit lanes that wrap on overflow. Because
  wrap-around addition is associative, the result of a GEMM does not depend on the order in which
  the cascade adds its partial sums.
- Requantisation is ``saturate(round_shift(acc * multiplier, shift) + zero_point)`` with a 31-bit
  fixed-point multiplier (gemmlowp/TFLite style), computed in 64 bits. The rounding modes are the
  AIE-ML SRS modes (see :data:`ROUNDING_MODES`).
- ONNX QuantizeLinear/DequantizeLinear follow the ONNX spec in float32 (round half to even).
- bf16 is float32 with the low 16 bits cleared after round-to-nearest-even.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

RoundingMode = Literal[
    "floor", "ceil", "pos_inf", "neg_inf", "sym_inf", "sym_zero", "conv_even", "conv_odd"
]

#: The AIE-ML SRS rounding modes (AIE API ``aie::rounding_mode``), named without the ``rnd_``
#: prefix. ``pos_inf``/``neg_inf`` round halves towards +/- infinity, ``sym_inf``/``sym_zero``
#: round halves away from/towards zero, ``conv_even``/``conv_odd`` round halves to even/odd.
ROUNDING_MODES: tuple[str, ...] = (
    "floor",
    "ceil",
    "pos_inf",
    "neg_inf",
    "sym_inf",
    "sym_zero",
    "conv_even",
    "conv_odd",
)

#: Integer dtypes by name, with their saturation range.
INT_DTYPES: dict[str, np.dtype] = {
    "int4": np.dtype(np.int8),
    "uint4": np.dtype(np.uint8),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "int16": np.dtype(np.int16),
    "uint16": np.dtype(np.uint16),
    "int32": np.dtype(np.int32),
}

_RANGES: dict[str, tuple[int, int]] = {
    "int4": (-8, 7),
    "uint4": (0, 15),
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
}

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


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of an integer array into int32 (the acc32 lane behaviour)."""
    return np.asarray(x, dtype=np.int64).astype(np.int32)


def round_shift(
    x: np.ndarray, shift: np.ndarray | int, mode: RoundingMode = "conv_even"
) -> np.ndarray:
    """Divide the int64 array ``x`` by ``2**shift`` and round with the SRS rounding ``mode``.

    ``shift`` may be a scalar or broadcast against ``x`` (per-channel shifts); it must lie in
    [0, 62]. A zero shift returns ``x`` unchanged. The result is int64.
    """
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if np.any(s < 0) or np.any(s > 62):
        raise ValueError(f"shift must lie in [0, 62], not {s.min()}..{s.max()}")
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode must be one of {ROUNDING_MODES}, not {mode!r}")
    floor = x >> s
    if mode == "floor":
        return floor
    one = np.int64(1)
    rem = x - (floor << s)  # in [0, 2**s)
    exact = rem == 0
    if mode == "ceil":
        return floor + (~exact)
    half = np.where(s > 0, one << np.maximum(s - 1, 0), 0)
    above = rem > half
    tie = (rem == half) & (s > 0)
    if mode == "pos_inf":
        up = above | tie
    elif mode == "neg_inf":
        up = above
    elif mode == "sym_inf":
        up = above | (tie & (x >= 0))
    elif mode == "sym_zero":
        up = above | (tie & (x < 0))
    elif mode == "conv_even":
        up = above | (tie & ((floor & 1) == 1))
    else:  # conv_odd
        up = above | (tie & ((floor & 1) == 0))
    return floor + (up & ~exact)


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


def to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest even) and return them as float32."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(nan, np.float32(np.nan), out).astype(np.float32)


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


def mac_partial_bf16(a_bf16: np.ndarray, b_bf16: np.ndarray) -> np.ndarray:
    """One core's bf16 contribution over its K slice, rounded once to fp32.

    Products of bf16 values are exact in fp32; the slice sum is formed in float64 and rounded
    once to float32 (the core's fp32 accumulator). Cascade partials are then added in fp32 in
    cascade order by :func:`cascade_add_f32`.
    """
    return np.matmul(a_bf16.astype(np.float64), b_bf16.astype(np.float64)).astype(np.float32)


def cascade_add_f32(acc: np.ndarray, partial: np.ndarray) -> np.ndarray:
    """Add a core's fp32 partial to the fp32 cascade accumulator (fp32 rounding)."""
    return (acc.astype(np.float32) + partial.astype(np.float32)).astype(np.float32)


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) in the dtype of x."""
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def _along(v: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    """Shape a per-axis vector (or scalar) so it broadcasts along ``axis`` of an ndim tensor."""
    if v.ndim == 0 or axis is None:
        return v
    axis = axis % ndim
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return v.reshape(shape)


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


# ------------------------------------------------------------------------------------------------
# MWQ (D2MoE matryoshka weight quantisation) and N:M structured sparsity.
#
# Added for the RTL blocks (codesign.rtl: MWQ plane decoder, N:M sparse expander); the cocotb
# benches check the blocks bit for bit against these functions.
# ------------------------------------------------------------------------------------------------

from dataclasses import dataclass  # noqa: E402  (kept in this block to ease merging)


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


def _check_nm(n: int, m: int) -> None:
    if m < 2 or m & (m - 1):
        raise ValueError(f"m must be a power of two >= 2, not {m}")
    if not 1 <= n <= m:
        raise ValueError(f"n must lie in [1, m={m}], not {n}")


def nm_index_bits(m: int) -> int:
    """Bits of one N:M position index: ``log2(m)``."""
    _check_nm(1, m)
    return m.bit_length() - 1


def nm_compress(dense: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Compress ``dense`` (..., L) into codesign's fixed-rate N:M format.

    The last axis is cut into groups of ``m`` consecutive elements; each group has at most ``n``
    non-zero elements (else ValueError naming the first bad group). Every group becomes exactly
    ``n`` slots, each a value and its ``log2(m)``-bit position in the group: the kept positions are
    the non-zero ones plus, when there are fewer than ``n``, the lowest zero positions, in
    ascending order (the canonical form, as NVIDIA's 2:4 metadata). Returns ``values`` (...,
    L // m * n) in the dtype of ``dense`` and ``indices`` (same shape, uint8); slot ``j`` of group
    ``g`` is at ``g * n + j``.

    For int8 2:4 (AIE-ML sparse mode: at least two zeros in every four bytes, UG1603) a group of
    4 bytes takes 2 bytes + 4 index bits (62.5%, the same as AIE-ML's own mask format of one bit
    per byte plus the non-zero bytes), at a fixed rate, so a stream of it runs at line rate.
    """
    _check_nm(n, m)
    dense = np.asarray(dense)
    length = dense.shape[-1]
    if length % m:
        raise ValueError(f"the last axis ({length}) must be a multiple of m={m}")
    g = dense.reshape(-1, length // m, m)
    nz = g != 0
    count = nz.sum(axis=-1)
    if np.any(count > n):
        flat = int(np.flatnonzero(count.reshape(-1) > n)[0])
        raise ValueError(
            f"group {flat} has {int(count.reshape(-1)[flat])} non-zero values; "
            f"an {n}:{m} group must have at most {n}"
        )
    # Rank the positions: non-zero first, then zeros, each in ascending position; keep the first
    # n and sort them by position.
    pos = np.arange(m)
    key = np.where(nz, pos, m + pos)
    keep = np.sort(np.argsort(key, axis=-1, kind="stable")[..., :n], axis=-1)
    values = np.take_along_axis(g, keep, axis=-1)
    out_shape = (*dense.shape[:-1], length // m * n)
    return values.reshape(out_shape), keep.astype(np.uint8).reshape(out_shape)


def nm_expand(values: np.ndarray, indices: np.ndarray, n: int, m: int) -> np.ndarray:
    """Expand the N:M format of :func:`nm_compress` back to dense (..., L // n * m) lanes.

    Slot ``j`` of a group writes its value at position ``indices[j]`` of the group; positions no
    slot names are zero. For input that is not canonical (repeated indices), the later slot wins;
    indices are taken modulo ``m`` (their low ``log2(m)`` bits, as the hardware reads them).
    """
    _check_nm(n, m)
    values = np.asarray(values)
    indices = np.asarray(indices, dtype=np.int64)
    if values.shape != indices.shape:
        raise ValueError(f"values {values.shape} and indices {indices.shape} must have one shape")
    slots = values.shape[-1]
    if slots % n:
        raise ValueError(f"the last axis ({slots}) must be a multiple of n={n}")
    v = values.reshape(-1, slots // n, n)
    ix = indices.reshape(-1, slots // n, n) & (m - 1)
    dense = np.zeros((*v.shape[:2], m), dtype=values.dtype)
    rows = np.arange(v.shape[0])[:, None]
    groups = np.arange(v.shape[1])[None, :]
    for j in range(n):  # ascending slots: a later slot overwrites an earlier one
        dense[rows, groups, ix[..., j]] = v[..., j]
    return dense.reshape(*values.shape[:-1], slots // n * m)


def nm_prune(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """Zero all but the ``n`` largest-magnitude elements of every group of ``m`` on the last axis.

    Ties keep the lower position. The result satisfies the N:M constraint of :func:`nm_compress`.
    """
    _check_nm(n, m)
    w = np.asarray(w)
    length = w.shape[-1]
    if length % m:
        raise ValueError(f"the last axis ({length}) must be a multiple of m={m}")
    g = w.reshape(-1, length // m, m)
    mag = np.abs(g.astype(np.float64))
    order = np.argsort(-mag, axis=-1, kind="stable")
    mask = np.zeros(g.shape, dtype=bool)
    np.put_along_axis(mask, order[..., :n], True, axis=-1)
    return np.where(mask, g, np.zeros((), dtype=w.dtype)).reshape(w.shape)
