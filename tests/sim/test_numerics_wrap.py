"""Two's-complement wrap into a dtype's bit width (ONNX Cast between integer types)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.sim import numerics
from codesign.sim.vector import apply


@pytest.mark.parametrize(
    ("dtype", "bits", "signed"),
    [("int4", 4, True), ("uint4", 4, False), ("int8", 8, True), ("uint8", 8, False)],
)
def test_wrap_is_modular_arithmetic_on_every_small_value(dtype, bits, signed):
    x = np.arange(-3 * 2**bits, 3 * 2**bits)
    got = numerics.wrap(x, dtype)
    for v, g in zip(x.tolist(), got.tolist(), strict=True):
        want = v % 2**bits
        if signed and want >= 2 ** (bits - 1):
            want -= 2**bits
        assert g == want


def test_cast_float_to_int4_truncates_then_wraps_like_the_onnx_reference():
    x = np.array([-9.0, -8.5, 7.9, 8.0, 15.0, 16.5], dtype=np.float32)
    (out,) = apply("cast", [x], {"to": "int4"})
    assert out.tolist() == [7, -8, 7, -8, -1, 0]
    (out,) = apply("cast", [x], {"to": "uint4"})
    assert out.tolist() == [7, 8, 7, 8, 15, 0]
