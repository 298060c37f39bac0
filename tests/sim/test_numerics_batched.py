"""The zero-point correction of activation x activation products, against an independent
exact-integer reference (Python integers)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.sim import numerics


def _python_reference(a, b, za, zb):
    """sum_k (a - za)(b - zb) with Python's unbounded integers, one element at a time."""
    M, K = a.shape
    N = b.shape[1]
    return [
        [sum((int(a[i, k]) - za) * (int(b[k, j]) - zb) for k in range(K)) for j in range(N)]
        for i in range(M)
    ]


@pytest.mark.parametrize(
    ("a_dtype", "b_dtype", "za", "zb", "mode"),
    [
        ("uint8", "uint8", 200, 3, "int8"),
        ("int8", "uint8", -128, 255, "int8"),
        ("int16", "int8", 1234, -7, "int16"),
    ],
)
def test_correction_equals_the_shifted_product(a_dtype, b_dtype, za, zb, mode) -> None:
    rng = np.random.default_rng(0)
    ia, ib = np.iinfo(a_dtype), np.iinfo(b_dtype)
    a = rng.integers(ia.min, ia.max, (5, 37), endpoint=True).astype(a_dtype)
    b = rng.integers(ib.min, ib.max, (37, 6), endpoint=True).astype(b_dtype)
    ar, zar = numerics.recentre(a, za, a_dtype)
    br, zbr = numerics.recentre(b, zb, b_dtype)
    if a_dtype == "uint8":
        assert ar.min() >= -128 and ar.max() <= 127 and zar == za - 128
    raw = ar @ br
    got = numerics.zero_point_correction(raw, ar.sum(-1), br.sum(-2), zar, zbr, 37, mode)
    np.testing.assert_array_equal(got, np.array(_python_reference(a, b, za, zb)))


def test_acc32_wraps_like_the_hardware() -> None:
    """In acc32 the result is the exact value modulo 2**32 (two's complement)."""
    raw = np.array([[2**31 - 1]], dtype=np.int64)
    got = numerics.zero_point_correction(raw, np.array([0]), np.array([0]), 0, 0, 1, "int8")
    assert got[0, 0] == 2**31 - 1
    got = numerics.zero_point_correction(raw + 1, np.array([0]), np.array([0]), 0, 0, 1, "int8")
    assert got[0, 0] == -(2**31)
    with pytest.raises(ValueError, match="int8, uint8 or int16"):
        numerics.recentre(np.zeros(2), 0, "uint16")
