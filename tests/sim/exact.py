"""An exact reference of codesign's integer epilogue in plain Python integers and fractions.

Independent of numpy and of :mod:`codesign.sim.numerics` on purpose (issue 10 item 3): it is
written from the definitions, one element at a time, so a change to the numerics package (a
rounding mode, a shift, a zero-point term) shows up as a difference against it.

Definitions:

- SRS by ``shift`` with rounding ``mode``: the exact quotient ``q = x / 2**shift`` rounded to an
  integer; ``floor``/``ceil`` as named; at a tie (fractional part exactly 1/2) ``pos_inf`` and
  ``neg_inf`` go towards +/- infinity, ``sym_inf``/``sym_zero`` away from / towards zero,
  ``conv_even``/``conv_odd`` to the even / odd neighbour; off a tie all of these round to nearest.
- Requantisation: ``saturate(SRS(acc * multiplier, shift) + zero_point)``, with ReLU clamping at
  the zero point.
- The integer GEMM with zero points: ``sum_k (a[m,k] - za) * (w[k,n] - zw[n]) + bias[n]``, in an
  accumulator of 32 bits that wraps (int8 mode) or of 64 bits (int16 mode, then SRS by
  ``acc_shift`` with ``conv_even`` and saturation to int32).
"""

from __future__ import annotations

from fractions import Fraction

RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
}


def srs(x: int, shift: int, mode: str) -> int:
    """``x / 2**shift`` rounded by the SRS ``mode``, exactly."""
    q = Fraction(x, 2**shift)
    lo = q.numerator // q.denominator  # floor
    frac = q - lo
    if frac == 0:
        return lo
    if mode == "floor":
        return lo
    if mode == "ceil":
        return lo + 1
    half = Fraction(1, 2)
    if frac != half:
        return lo + 1 if frac > half else lo
    tie_up = {
        "pos_inf": True,
        "neg_inf": False,
        "sym_inf": q > 0,
        "sym_zero": q < 0,
        "conv_even": lo % 2 == 1,
        "conv_odd": lo % 2 == 0,
    }[mode]
    return lo + 1 if tie_up else lo


def saturate(x: int, dtype: str) -> int:
    lo, hi = RANGES[dtype]
    return min(max(x, lo), hi)


def wrap32(x: int) -> int:
    """Two's-complement wrap into 32 bits."""
    return (x + 2**31) % 2**32 - 2**31


def requantize(
    acc: int, multiplier: int, shift: int, zero_point: int, dtype: str, mode: str, relu: bool
) -> int:
    y = srs(acc * multiplier, shift, mode) + zero_point
    if relu:
        y = max(y, zero_point)
    return saturate(y, dtype)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real`` (a positive float64) as ``m * 2**-shift`` with m in [2**30, 2**31), the
    nearest such (ties to even), or (0, 0) when the shift would exceed 62."""
    r = Fraction(real)
    shift = 0
    while r * 2**shift < 2**30:
        shift += 1
    while r * 2**shift >= 2**31:
        shift -= 1
    m = srs_fraction(r * 2**shift)
    if m == 2**31:
        m, shift = 2**30, shift - 1
    if shift > 62:
        return 0, 0
    return m, shift


def srs_fraction(q: Fraction) -> int:
    """Round a fraction to the nearest integer, ties to even."""
    lo = q.numerator // q.denominator
    frac = q - lo
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and lo % 2 == 1):
        return lo + 1
    return lo


def gemm_int(
    a: list[list[int]],
    w: list[list[int]],
    *,
    mode: str,
    a_zero: int = 0,
    w_zero: list[int] | None = None,
    bias: list[int] | None = None,
    acc_shift: int = 0,
    relu: bool = False,
    requant: tuple[list[int], list[int], int, str, str] | None = None,
) -> list[list[int]]:
    """The integer GEMM with zero points and its epilogue, element by element.

    ``mode`` is the mmul mode: "int8" (acc32, wraps) or "int16" (acc64, then SRS by
    ``acc_shift``). ``requant`` is (multipliers [N], shifts [N], zero point, dtype, rounding).
    """
    k_dim, n_dim = len(w), len(w[0])
    zw = w_zero or [0] * n_dim
    out = []
    for row in a:
        y_row = []
        for n in range(n_dim):
            acc = sum((row[k] - a_zero) * (w[k][n] - zw[n]) for k in range(k_dim))
            if bias is not None:
                acc += bias[n]
            if mode == "int8":
                acc = wrap32(acc)
            else:
                acc = saturate(srs(acc, acc_shift, "conv_even"), "int32")
            if relu:
                acc = max(acc, 0)
            if requant is not None:
                mult, shift, zp, dtype, rounding = requant
                acc = requantize(acc, mult[n], shift[n], zp, dtype, rounding, relu=False)
            y_row.append(acc)
        out.append(y_row)
    return out
