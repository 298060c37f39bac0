"""codesign.sim.numerics against first principles and against onnxruntime."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesign.sim import numerics as n


def _exact_round(x: int, shift: int, mode: str) -> int:
    q = Fraction(x, 2**shift)
    fl = q.numerator // q.denominator
    frac = q - fl
    if frac == 0:
        return fl
    if mode == "floor":
        return fl
    if mode == "ceil":
        return fl + 1
    if frac != Fraction(1, 2):
        return fl + (frac > Fraction(1, 2))
    return {
        "pos_inf": fl + 1,
        "neg_inf": fl,
        "sym_inf": fl + 1 if x > 0 else fl,
        "sym_zero": fl if x > 0 else fl + 1,
        "conv_even": fl + (fl % 2),
        "conv_odd": fl + (1 - fl % 2),
    }[mode]


@pytest.mark.parametrize("mode", n.ROUNDING_MODES)
@given(x=st.integers(-(2**40), 2**40), shift=st.integers(0, 20))
def test_round_shift_matches_exact_rationals(mode: str, x: int, shift: int) -> None:
    assert int(n.round_shift(np.array([x]), shift, mode)[0]) == _exact_round(x, shift, mode)


def test_round_shift_ties_per_mode() -> None:
    x = np.array([5, -5, 7, -7])  # /2 -> 2.5, -2.5, 3.5, -3.5
    assert n.round_shift(x, 1, "conv_even").tolist() == [2, -2, 4, -4]
    assert n.round_shift(x, 1, "conv_odd").tolist() == [3, -3, 3, -3]
    assert n.round_shift(x, 1, "sym_inf").tolist() == [3, -3, 4, -4]
    assert n.round_shift(x, 1, "sym_zero").tolist() == [2, -2, 3, -3]
    assert n.round_shift(x, 1, "pos_inf").tolist() == [3, -2, 4, -3]
    assert n.round_shift(x, 1, "neg_inf").tolist() == [2, -3, 3, -4]


@given(st.floats(1e-12, 1e4, allow_nan=False))
def test_quantize_multiplier_is_accurate(real: float) -> None:
    m, s = n.quantize_multiplier(real)
    if m[0] == 0:
        assert real < 2.0**-31
        return
    assert 2**30 <= int(m[0]) < 2**31
    assert abs(int(m[0]) * 2.0 ** -int(s[0]) - real) <= real * 2.0**-30


def test_requantize_saturates_and_relu() -> None:
    acc = np.array([-(2**31), -1000, 0, 1000, 2**31 - 1], dtype=np.int64)
    m, s = n.quantize_multiplier(0.5)
    y = n.requantize(acc, m, s, -3, "int8")
    assert y.tolist() == [-128, -128, -3, 127, 127]
    y = n.requantize(acc, m, s, -3, "int8", relu=True)
    assert y.tolist() == [-3, -3, -3, 127, 127]


def test_quantize_dequantize_match_onnxruntime() -> None:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    x = np.random.default_rng(0).normal(0, 3, size=(64, 5)).astype(np.float32)
    x[0, :4] = [0.5, 1.5, -0.5, -2.5]  # ties
    scale, zp = np.float32(0.5), np.int8(-3)
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [
            helper.make_tensor_value_info("q", TensorProto.INT8, x.shape),
            helper.make_tensor_value_info("d", TensorProto.FLOAT, x.shape),
        ],
        initializer=[numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zp, "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    q, d = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    np.testing.assert_array_equal(n.quantize_linear(x, scale, zp, "int8"), q)
    np.testing.assert_array_equal(n.dequantize_linear(q, scale, zp), d)
    onnx.checker.check_model(model)


def test_bf16_rounding_to_nearest_even() -> None:
    one = np.float32(1.0)
    ulp = np.float32(2.0**-7)
    x = np.array([one + ulp / 2, one + ulp * 1.5, one + ulp * 0.75], dtype=np.float32)
    assert n.to_bf16(x).tolist() == [1.0, 1.0 + 2 * float(ulp), 1.0 + float(ulp)]


def test_acc32_wraps_acc64_does_not() -> None:
    big = np.array([2**31 - 1], dtype=np.int64)
    assert n.accumulate(big, np.array([1]), "int8").tolist() == [-(2**31)]
    assert n.accumulate(big, np.array([1]), "int16").tolist() == [2**31]


def test_int_matmul_exact_beyond_float64() -> None:
    a = np.full((1, 4), 2**27 + 1, dtype=np.int64)
    b = np.full((4, 1), 2**27 + 3, dtype=np.int64)  # the sum exceeds 2**53: float64 would round
    assert int(n.int_matmul(a, b)[0, 0]) == 4 * (2**27 + 1) * (2**27 + 3)


def test_cascade_mac_bf16_is_the_rounded_partial_added_in_fp32() -> None:
    """The in-place cascade step equals its definition: the float64 partial rounded once to fp32
    (mac_partial_bf16), then one fp32 add (cascade_add_f32), on values whose float64 partial
    rounds to fp32 in both directions and whose fp32 add rounds too (magnitudes 2**-20..2**20)."""
    rng = np.random.default_rng(7)
    a = n.to_bf16(rng.standard_normal((16, 32)) * 2.0 ** rng.integers(-20, 20, (16, 32))).astype(
        np.float32
    )
    b = n.to_bf16(rng.standard_normal((32, 24)) * 2.0 ** rng.integers(-20, 20, (32, 24))).astype(
        np.float32
    )
    acc = (rng.standard_normal((16, 24)) * 1e3).astype(np.float32)
    want = n.cascade_add_f32(acc, n.mac_partial_bf16(a, b))
    got = acc.copy()
    n.cascade_mac_bf16(got, a, b)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # the single-rounding matters: a float64 add before rounding would differ somewhere
    twice = (acc.astype(np.float64) + np.matmul(a.astype(np.float64), b)).astype(np.float32)
    assert (twice.view(np.uint32) != want.view(np.uint32)).any()


def test_cascade_gemm_bf16_is_the_cores_macs_in_order() -> None:
    """cascade_gemm_bf16 over column pieces gives the accumulator of cascade_mac_bf16 applied
    core by core (pieces narrower and wider than CASCADE_COLUMNS, rounding-sensitive values)."""
    rng = np.random.default_rng(3)
    cores, rows, k = 6, 5, 8
    for cols in (1, n.CASCADE_COLUMNS - 1, n.CASCADE_COLUMNS + 7):
        a = n.to_bf16(rng.standard_normal((cores, rows, k)) * 10.0 ** rng.integers(-3, 4, k))
        b = n.to_bf16(rng.standard_normal((cores, k, cols)) * 10.0 ** rng.integers(-3, 4, cols))
        a, b = a.astype(np.float64), b.astype(np.float64)
        want = np.zeros((rows, cols), np.float32)
        for i in range(cores):
            n.cascade_mac_bf16(want, a[i], b[i])
        got = n.cascade_gemm_bf16(a, n.cascade_columns(b))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
