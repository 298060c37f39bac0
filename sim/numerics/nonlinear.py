"""The nonlinear functions as the hardware computes them: exp, erf, tanh, sigmoid, rsqrt, sqrt,
reciprocal, division, softmax, LayerNorm, RMSNorm, GELU (erf and tanh forms), SiLU, row mean.

Every function here is the one definition of what a PL vector unit or an AIE-ML vector core
computes for the op: built only from fp32 multiply, add, compare, exponent manipulation
(``ldexp``/``frexp``, bit operations on the fp32 exponent field) and the row reductions below,
so that an HLS or AIE kernel can reproduce it bit for bit. All intermediate results are rounded
to fp32 after every operation (numpy float32 arithmetic).

Approximations (each stated with its input range and its error bound against float64 numpy;
the bounds are asserted by ``tests/sim/test_nonlinear_numerics.py``):

- :func:`exp_f32`: ``2**x`` range reduction with a Cody-Waite split of ln 2:
  ``n = rint(x * log2(e))``, ``r = (x - n * LN2_HI) - n * LN2_LO`` (|r| <= ln2/2), ``e**r`` by
  the degree-7 Taylor polynomial in Horner form, then ``ldexp(p, n)``. Input range: every fp32;
  ``x < EXP_MIN`` (below the smallest normal result) gives 0 (no denormals, as the AIE-ML vector
  unit flushes them), ``x > EXP_MAX`` gives +inf, -inf gives 0, NaN stays NaN.
  Bound: relative error <= :data:`EXP_REL_ERR` (4e-7, about 4 fp32 ulp) on [EXP_MIN, EXP_MAX].
- :func:`reciprocal_f32`: seed ``48/17 - 32/17 * m`` on the mantissa ``m`` in [0.5, 1) of
  ``frexp`` (relative error <= 1/17), three Newton steps ``y = y * (2 - m * y)``, then the
  exponent. Bound: relative error <= :data:`RECIP_REL_ERR` (3e-7) for finite non-zero x;
  1/0 = inf with the sign of the zero, 1/inf = 0, NaN stays NaN.
- :func:`div_f32`: the IEEE fp32 quotient, correctly rounded (error 0 against float32
  division; <= 2**-24 relative against float64): the PL unit uses an IEEE floating-point
  divider, the AIE kernel the reciprocal above refined by one remainder correction
  (``q + (a - q*b) * y``) to the correctly rounded quotient. ``a * reciprocal(b)`` alone would
  turn 0 / (a subnormal b) into NaN and miss onnxruntime's Div by an ulp.
- :func:`rsqrt_f32`: ``x = m' * 2**e'`` with ``e'`` even and ``m'`` in [0.25, 1), seed
  ``2.133 - 1.219 * m'`` (relative error <= 0.087), four Newton steps
  ``y = y * (1.5 - 0.5 * m' * y * y)``, then ``2**(-e'/2)``. Bound: relative error <=
  :data:`RSQRT_REL_ERR` (3e-7) for finite x > 0; rsqrt(0) = inf, negative x gives NaN.
  :func:`sqrt_f32` is ``x * rsqrt(x)`` (sqrt(0) = 0; relative error <= 4e-7).
- :func:`erf_f32`: for |x| < 0.5 the odd Taylor series to x**11 (relative error <= 1e-7
  there); for |x| >= 0.5 Abramowitz & Stegun 7.1.26 (``1 - poly(t) * exp(-x*x)``,
  ``t = 1 / (1 + 0.3275911 |x|)``) with the fp32 exp and reciprocal above; |x| >= 4 gives +-1.
  Bound: absolute error <= :data:`ERF_ABS_ERR` (5e-7) everywhere.
- :func:`tanh_f32`: for |x| < 0.5 the odd Taylor series to x**13; otherwise
  ``sign(x) * (1 - 2 / (exp(2|x|) + 1))``; |x| >= 9.1 gives +-1. Bound: absolute error <=
  :data:`TANH_ABS_ERR` (5e-7) and relative <= 2e-6.
- :func:`sigmoid_f32`: ``1 / (1 + exp(-x))`` with the exp and reciprocal above. Bound: absolute
  error <= :data:`SIGMOID_ABS_ERR` (3e-7).
- :func:`gelu_f32`: ``0.5 * x * (1 + erf(x / sqrt 2))`` (``approximate="none"``) or
  ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))`` (``"tanh"``). Bound: absolute
  error <= :data:`GELU_ABS_ERR` * max(1, |x|) against the same formula in float64.
- :func:`silu_f32`: ``x * sigmoid(x)``, absolute error <= 3e-7 * max(1, |x|).
- Row reductions (:func:`row_sum_f32`): the sum of a row of fp32 values is formed in a wide
  accumulator (float64) in index order and rounded once to fp32; the row max is exact.
- :func:`softmax_f32` (last axis): ``e = exp(x - max)``, ``e * reciprocal(row_sum(e))``; a row
  of all -inf gives NaN (as onnxruntime does). Bound: absolute error <= :data:`SOFTMAX_ABS_ERR`
  (1e-6) per element.
- :func:`layernorm_f32` (last axis): ``mean = row_sum(x) * (1/N)``, ``d = x - mean``,
  ``var = row_sum(d*d) * (1/N)``, ``y = d * rsqrt(var + eps) * gamma + beta`` (fp32 steps).
  :func:`rmsnorm_f32`: ``y = x * rsqrt(row_sum(x*x) * (1/N) + eps) * gamma``. Bound: absolute
  error <= :data:`NORM_ABS_ERR` (2e-6) * max(1, |gamma|) + |beta| * 2**-23 against float64.
- :func:`row_mean_f32`: ``row_sum(x) * (1/N)`` (ReduceMean over the last axis).

bf16 behaviour: every function takes ``dtype`` ("float32", the default, or "bf16"). With
"bf16" the inputs are rounded to bf16 (round to nearest even) first, the computation is the
fp32 one above, and the result is rounded to bf16: what a kernel with bf16 tensors in memory
and fp32 arithmetic in registers (the AIE-ML accfloat lanes) computes. The error bound is then
the fp32 bound plus 2**-9 relative (the output rounding) plus the input rounding's effect.
The compiler plans float32 activations (so the outputs follow onnxruntime's fp32 results);
the bf16 form is there for bf16 tensors and is tested like the rest.

:data:`OPS_PER_ELEMENT` states how many fp32 vector operations each function costs per element
(multiplies, adds, compares, exponent steps), for the cost model.
"""

from __future__ import annotations

import numpy as np

from codesign.sim.numerics.bf16 import to_bf16

F32 = np.float32

#: Cody-Waite split of ln 2: LN2_HI has 12 trailing zero bits so ``n * LN2_HI`` is exact for
#: |n| < 2**12, LN2_LO is the rest
LN2_HI = F32(0.693145751953125)
LN2_LO = F32(1.42860682030941723212e-6)
LOG2E = F32(1.4426950408889634)
#: below this exp's result is not a normal fp32 number (ln of 2**-126): it gives 0
EXP_MIN = F32(-87.33654)
#: above this exp overflows fp32 (ln of the largest fp32): it gives +inf
EXP_MAX = F32(88.72283)

EXP_REL_ERR = 4e-7
RECIP_REL_ERR = 3e-7
DIV_REL_ERR = 2.0**-24
RSQRT_REL_ERR = 3e-7
SQRT_REL_ERR = 4e-7
ERF_ABS_ERR = 5e-7
TANH_ABS_ERR = 5e-7
SIGMOID_ABS_ERR = 3e-7
GELU_ABS_ERR = 5e-7
SILU_ABS_ERR = 3e-7
SOFTMAX_ABS_ERR = 1e-6
NORM_ABS_ERR = 2e-6

#: exp's Taylor coefficients 1/k!, k = 0..7, highest first (Horner order)
_EXP_POLY = tuple(
    F32(1.0 / np.prod(np.arange(1, k + 1), dtype=np.float64)) for k in range(7, -1, -1)
)
#: erf near 0: 2/sqrt(pi) * (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320), coefficients
#: of x^(2j+1) with the 2/sqrt(pi) folded in, highest first
_ERF_SMALL = tuple(
    F32(2.0 / np.sqrt(np.pi) * c) for c in (-1 / 1320, 1 / 216, -1 / 42, 1 / 10, -1 / 3, 1.0)
)
#: Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7 in exact arithmetic)
_AS_P = F32(0.3275911)
_AS_A = tuple(F32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))
#: tanh near 0: x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925
#: + 21844x^13/6081075, highest first
_TANH_SMALL = tuple(
    F32(c) for c in (21844 / 6081075, -1382 / 155925, 62 / 2835, -17 / 315, 2 / 15, -1 / 3, 1.0)
)
#: rsqrt seed on [0.25, 1): a + b * m (relative error <= 0.087)
_RSQRT_A, _RSQRT_B = F32(2.133), F32(-1.219)
#: reciprocal seed on [0.5, 1): 48/17 - 32/17 * m (relative error <= 1/17)
_RECIP_A, _RECIP_B = F32(48 / 17), F32(-32 / 17)
_SQRT1_2 = F32(0.7071067811865476)
_GELU_C = F32(0.7978845608028654)  # sqrt(2/pi)
_GELU_K = F32(0.044715)

#: fp32 vector operations per element of each function (for the cost model): the operations
#: of the definitions above, counting multiply, add, compare/select and an exponent step as one
OPS_PER_ELEMENT: dict[str, int] = {
    "exp": 22,  # clamp 2, reduce 5, Horner 14, ldexp 1
    "reciprocal": 9,  # frexp 1, seed 2, 3 Newton x 2, ldexp 1  (rounded up from the 3 mults)
    "div": 12,  # reciprocal 9, quotient 1, remainder correction 2
    "rsqrt": 14,  # frexp/parity 2, seed 2, 4 Newton x 2.5, ldexp 1
    "sqrt": 15,
    "erf": 48,  # small branch 8, large branch exp 22 + recip 9 + poly 10, selects
    "tanh": 50,
    "sigmoid": 33,
    "gelu": 52,
    "gelu_tanh": 56,
    "silu": 34,
}


def _f32(x: np.ndarray, dtype: str) -> np.ndarray:
    """The fp32 values a kernel computes on: bf16 inputs are rounded to bf16 first."""
    x = np.asarray(x, dtype=F32)
    if dtype == "bf16":
        return to_bf16(x)
    if dtype != "float32":
        raise ValueError(f"dtype must be 'float32' or 'bf16', not {dtype!r}")
    return x


def _out(y: np.ndarray, dtype: str) -> np.ndarray:
    y = np.asarray(y, dtype=F32)
    return to_bf16(y) if dtype == "bf16" else y


def _horner(coeffs: tuple[np.float32, ...], t: np.ndarray) -> np.ndarray:
    p = np.full_like(t, coeffs[0])
    for c in coeffs[1:]:
        p = p * t + c
    return p


# --- element-wise ---------------------------------------------------------------------------


def _exp(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        xc = np.clip(x, EXP_MIN, EXP_MAX)
        n = np.rint(xc * LOG2E)
        r = (xc - n * LN2_HI) - n * LN2_LO
        p = _horner(_EXP_POLY, r)
        y = np.ldexp(p, n.astype(np.int32)).astype(F32)
        y = np.where(x < EXP_MIN, F32(0), y)
        y = np.where(x > EXP_MAX, F32(np.inf), y)
    return np.where(np.isnan(x), F32(np.nan), y).astype(F32)


def exp_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """e**x (see the module docstring: range reduction, degree-7 polynomial, fp32)."""
    return _out(_exp(_f32(x, dtype)), dtype)


def _reciprocal(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m, e = np.frexp(np.abs(x))
        m = m.astype(F32)
        y = _RECIP_A + _RECIP_B * m
        for _ in range(3):
            y = y * (F32(2) - m * y)
        y = np.ldexp(y, -e).astype(F32) * np.sign(x).astype(F32)
        y = np.where(x == 0, np.copysign(F32(np.inf), x), y)
        y = np.where(np.isinf(x), np.copysign(F32(0), x), y)
    return np.where(np.isnan(x), F32(np.nan), y).astype(F32)


def reciprocal_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """1/x by a linear seed and three Newton steps (module docstring)."""
    return _out(_reciprocal(_f32(x, dtype)), dtype)


def div_f32(a: np.ndarray, b: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """a / b, the correctly rounded IEEE fp32 quotient (broadcasting; module docstring)."""
    with np.errstate(all="ignore"):
        return _out(np.divide(_f32(a, dtype), _f32(b, dtype), dtype=F32), dtype)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        m, e = np.frexp(x)
        odd = (e & 1).astype(bool)
        m = np.where(odd, m * F32(0.5), m).astype(F32)  # m' in [0.25, 1)
        e = np.where(odd, e + 1, e)
        y = _RSQRT_A + _RSQRT_B * m
        for _ in range(4):
            y = y * (F32(1.5) - F32(0.5) * m * y * y)
        y = np.ldexp(y, -(e // 2)).astype(F32)
        y = np.where(x == 0, F32(np.inf), y)
        y = np.where(np.isposinf(x), F32(0), y)
        y = np.where((x < 0) | np.isnan(x), F32(np.nan), y)
    return y.astype(F32)


def rsqrt_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """1/sqrt(x) by a linear seed and four Newton steps (module docstring)."""
    return _out(_rsqrt(_f32(x, dtype)), dtype)


def _sqrt(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        y = x * _rsqrt(x)
        y = np.where(x == 0, x, y)
        return np.where(np.isposinf(x), F32(np.inf), y).astype(F32)


def sqrt_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """sqrt(x) as ``x * rsqrt(x)`` (0 stays 0, +inf stays +inf, negative gives NaN)."""
    return _out(_sqrt(_f32(x, dtype)), dtype)


def _erf(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        a = np.abs(x)
        x2 = x * x
        small = x * _horner(_ERF_SMALL, x2)
        t = _reciprocal(F32(1) + _AS_P * a)
        poly = t * _horner(_AS_A, t)
        large = F32(1) - poly * _exp(-x2)
        large = np.where(a >= 4, F32(1), large)
        y = np.where(a < 0.5, small, np.copysign(large, x))
    return np.where(np.isnan(x), F32(np.nan), y).astype(F32)


def erf_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """erf(x): Taylor series near 0, Abramowitz & Stegun 7.1.26 elsewhere (module docstring)."""
    return _out(_erf(_f32(x, dtype)), dtype)


def _tanh(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        a = np.abs(x)
        small = x * _horner(_TANH_SMALL, x * x)
        big = F32(1) - F32(2) * _reciprocal(_exp(F32(2) * a) + F32(1))
        big = np.where(a >= 9.1, F32(1), big)
        y = np.where(a < 0.5, small, np.copysign(big, x))
    return np.where(np.isnan(x), F32(np.nan), y).astype(F32)


def tanh_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """tanh(x): Taylor series near 0, ``1 - 2/(exp(2|x|)+1)`` elsewhere (module docstring)."""
    return _out(_tanh(_f32(x, dtype)), dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return _reciprocal(F32(1) + _exp(-x))


def sigmoid_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """1 / (1 + exp(-x)) with the fp32 exp and reciprocal."""
    return _out(_sigmoid(_f32(x, dtype)), dtype)


def gelu_f32(x: np.ndarray, approximate: str = "none", dtype: str = "float32") -> np.ndarray:
    """GELU, ONNX Gelu-20: ``approximate`` "none" (erf form) or "tanh"."""
    x = _f32(x, dtype)
    with np.errstate(all="ignore"):
        if approximate == "none":
            inner = _erf(x * _SQRT1_2)
        elif approximate == "tanh":
            inner = _tanh(_GELU_C * (x + _GELU_K * x * x * x))
        else:
            raise ValueError(f"approximate must be 'none' or 'tanh', not {approximate!r}")
        return _out(F32(0.5) * x * (F32(1) + inner), dtype)


def silu_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """SiLU (swish): x * sigmoid(x)."""
    x = _f32(x, dtype)
    with np.errstate(all="ignore"):
        return _out(x * _sigmoid(x), dtype)


# --- row-wise (last axis) -------------------------------------------------------------------


def row_sum_f32(x: np.ndarray) -> np.ndarray:
    """The sum over the last axis, keepdims: a float64 accumulator fed the row's elements in
    index order (left to right, as the kernels' loops do: ``np.sum`` would add pairwise, an
    order no kernel follows), rounded once to fp32."""
    x = np.asarray(x, F32)
    if x.shape[-1] == 0:
        return np.zeros((*x.shape[:-1], 1), F32)
    # np.add.accumulate is a scan: element j is (element j-1) + x[j], strictly in order
    with np.errstate(all="ignore"):  # inf - inf and overflow to inf are the hardware's too
        return np.add.accumulate(x, axis=-1, dtype=np.float64)[..., -1:].astype(F32)


def row_mean_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """ReduceMean over the last axis with keepdims: ``row_sum(x) * (1/N)`` in fp32."""
    x = _f32(x, dtype)
    return _out(row_sum_f32(x) * F32(1.0 / x.shape[-1]), dtype)


def softmax_f32(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Softmax over the last axis: max-subtracted, fp32 exp, wide row sum, fp32 reciprocal."""
    x = _f32(x, dtype)
    with np.errstate(all="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        e = _exp(x - m)
        return _out(e * _reciprocal(row_sum_f32(e)), dtype)


def layernorm_f32(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    epsilon: float = 1e-5,
    dtype: str = "float32",
) -> np.ndarray:
    """LayerNormalization over the last axis (module docstring for the steps)."""
    x = _f32(x, dtype)
    inv_n = F32(1.0 / x.shape[-1])
    with np.errstate(all="ignore"):
        d = x - row_sum_f32(x) * inv_n
        var = row_sum_f32(d * d) * inv_n
        y = d * _rsqrt(var + F32(epsilon))
        if gamma is not None:
            y = y * _f32(gamma, dtype)
        if beta is not None:
            y = y + _f32(beta, dtype)
        return _out(y, dtype)


def rmsnorm_f32(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    epsilon: float = 1e-5,
    dtype: str = "float32",
) -> np.ndarray:
    """RMSNormalization over the last axis: ``x * rsqrt(mean(x*x) + eps) * gamma``."""
    x = _f32(x, dtype)
    inv_n = F32(1.0 / x.shape[-1])
    with np.errstate(all="ignore"):
        y = x * _rsqrt(row_sum_f32(x * x) * inv_n + F32(epsilon))
        if gamma is not None:
            y = y * _f32(gamma, dtype)
        return _out(y, dtype)


__all__ = [
    "OPS_PER_ELEMENT",
    "div_f32",
    "erf_f32",
    "exp_f32",
    "gelu_f32",
    "layernorm_f32",
    "reciprocal_f32",
    "rmsnorm_f32",
    "row_mean_f32",
    "row_sum_f32",
    "rsqrt_f32",
    "sigmoid_f32",
    "silu_f32",
    "softmax_f32",
    "sqrt_f32",
    "tanh_f32",
]
