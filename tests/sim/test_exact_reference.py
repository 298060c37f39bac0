"""codesign.sim.numerics against the independent exact reference (tests/sim/exact.py).

Directed cases: rounding ties in every SRS mode, negative values, shifts 0, 1, 31 and 62, int16
operands in acc64 with a pre-shift, acc32 wrap-around, and the zero-point terms of the integer
GEMM (including the pass that folds them). Changing the acc64 -> int32 SRS rounding from
``conv_even`` to ``floor`` in :func:`codesign.sim.numerics.gemm_epilogue_int` fails
``test_acc64_srs_rounds_half_to_even`` and ``test_int16_gemm_with_preshift_matches_exact``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.sim import numerics as n
from tests.sim import exact

MODES = n.ROUNDING_MODES
SHIFTS = (0, 1, 2, 7, 31, 32, 61, 62)


def _directed_values(shift: int) -> list[int]:
    """Ties, one either side of a tie, exact multiples and extremes, positive and negative."""
    vals = {0, 1, -1, 2**62 - 1, -(2**62), 2**63 - 1, -(2**63)}
    if shift:
        unit, half = 1 << shift, 1 << (shift - 1)
        for k in (0, 1, 2, 3, 1000, 2 ** max(0, 60 - shift)):
            for base in (k * unit, -k * unit):
                vals.update({base + half, base - half, base + half + 1, base + half - 1, base})
    return sorted(v for v in vals if -(2**63) <= v < 2**63)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shift", SHIFTS)
def test_round_shift_directed(mode: str, shift: int) -> None:
    xs = _directed_values(shift)
    got = n.round_shift(np.array(xs, dtype=np.int64), shift, mode).tolist()
    want = [exact.srs(x, shift, mode) for x in xs]
    assert got == want


def test_round_shift_ties_differ_between_modes() -> None:
    """The directed ties tell every pair of modes apart (so a swapped mode cannot pass)."""
    xs = [v for s in (1, 2) for v in _directed_values(s)]
    outs = {mode: tuple(exact.srs(x, s, mode) for s in (1, 2) for x in xs) for mode in MODES}
    assert len(set(outs.values())) == len(MODES)


@settings(max_examples=300, deadline=None)
@given(
    x=st.integers(-(2**63), 2**63 - 1),
    shift=st.integers(0, 62),
    mode=st.sampled_from(MODES),
)
def test_round_shift_random(x: int, shift: int, mode: str) -> None:
    got = int(n.round_shift(np.array([x], dtype=np.int64), shift, mode)[0])
    assert got == exact.srs(x, shift, mode)


@settings(max_examples=300, deadline=None)
@given(
    acc=st.integers(-(2**31), 2**31 - 1),
    mult=st.integers(2**30, 2**31 - 1),
    shift=st.integers(0, 62),
    zp=st.integers(-128, 255),
    dtype=st.sampled_from(["int8", "uint8", "int16"]),
    mode=st.sampled_from(MODES),
    relu=st.booleans(),
)
def test_requantize_random(acc, mult, shift, zp, dtype, mode, relu) -> None:
    got = int(n.requantize(np.array([acc]), mult, shift, zp, dtype, rounding=mode, relu=relu)[0])
    assert got == exact.requantize(acc, mult, shift, zp, dtype, mode, relu)


@pytest.mark.parametrize("mode", MODES)
def test_requantize_ties_and_extremes(mode: str) -> None:
    # acc * 2**30 / 2**31 = acc / 2: odd accumulators are exact ties
    accs = [-(2**31), -5, -3, -1, 0, 1, 3, 5, 255, 257, 2**31 - 1]
    for mult, shift in ((2**30, 31), (2**31 - 1, 62), (2**30, 0), (2**30 + 1, 40)):
        for zp, dtype in ((0, "int8"), (-128, "int8"), (128, "uint8"), (-7, "int16")):
            got = n.requantize(np.array(accs), mult, shift, zp, dtype, rounding=mode).tolist()
            want = [exact.requantize(a, mult, shift, zp, dtype, mode, False) for a in accs]
            assert got == want, (mult, shift, zp, dtype)


@pytest.mark.parametrize(
    "real", [1.0, 0.5, 0.75, 2.0**-20, 3.3e-5, 1 - 2.0**-40, 0.999999999, 2.0**-31, 1e-19, 1e-25]
)
def test_quantize_multiplier_matches_exact(real: float) -> None:
    m, s = n.quantize_multiplier(real)
    assert (int(m[0]), int(s[0])) == exact.quantize_multiplier(real)


def test_acc64_srs_rounds_half_to_even() -> None:
    """The acc64 -> int32 SRS of the int16 mode rounds ties to even, as the exact reference."""
    shift = 3
    accs = [k * 8 + r for k in (-5, -2, -1, 0, 1, 2, 5, 2**30) for r in (3, 4, 5, -4, 12)]
    got = n.gemm_epilogue_int(np.array([accs], dtype=np.int64), dtype="int16", acc_shift=shift)
    want = [exact.saturate(exact.srs(a, shift, "conv_even"), "int32") for a in accs]
    assert got.tolist() == [want]


def _rand(rng: np.random.Generator, lo: int, hi: int, shape) -> np.ndarray:
    return rng.integers(lo, hi, shape, endpoint=True)


@pytest.mark.parametrize("seed", range(4))
def test_int8_gemm_zero_points_wrap_and_requant(seed: int) -> None:
    """acc32: W - zw folded into the weight, -za * colsum into the bias (as the pass does),
    wrap-around, ReLU and per-channel requantisation, against the element-wise definition."""
    rng = np.random.default_rng(seed)
    m_, k_, n_ = 3, 40, 5
    a = _rand(rng, 0, 255, (m_, k_))  # uint8 activations
    za = int(rng.integers(0, 255))
    w = _rand(rng, -64, 63, (k_, n_))
    zw = _rand(rng, -60, 60, (n_,))
    bias = _rand(rng, -(2**31), 2**31 - 1, (n_,))  # near the edges: the sum wraps
    w_shift = w - zw[None, :]
    colsum = w_shift.sum(axis=0)
    mult = _rand(rng, 2**30, 2**31 - 1, (n_,))
    shift = _rand(rng, 20, 40, (n_,))
    requant = (mult.astype(np.int32), shift, 3, "int8", "conv_even")
    for relu in (False, True):
        got = n.reference_gemm_int(
            a.astype(np.uint8),
            w_shift.astype(np.int8),
            "int8",
            bias=n.wrap_int32(bias - za * colsum),
            relu=relu,
            requant=requant,
        )
        want = exact.gemm_int(
            a.tolist(),
            w.tolist(),
            mode="int8",
            a_zero=za,
            w_zero=zw.tolist(),
            bias=bias.tolist(),
            relu=relu,
            requant=(mult.tolist(), shift.tolist(), 3, "int8", "conv_even"),
        )
        assert got.tolist() == want
        # the run-time activation zero point path (colsum input) gives the same numbers
        got_rt = n.reference_gemm_int(
            a.astype(np.uint8),
            w_shift.astype(np.int8),
            "int8",
            bias=n.wrap_int32(bias),
            a_zero_point=np.uint8(za),
            colsum=colsum.astype(np.int32),
            relu=relu,
            requant=requant,
        )
        assert got_rt.tolist() == want


@pytest.mark.parametrize("seed", range(4))
def test_int16_gemm_with_preshift_matches_exact(seed: int) -> None:
    """acc64 with full-range int16 operands: the sum exceeds int32, SRS by the pre-shift
    (conv_even, saturating), then requantisation; ties are planted in the accumulator."""
    rng = np.random.default_rng(100 + seed)
    m_, k_, n_ = 4, 64, 6
    a = _rand(rng, -32768, 32767, (m_, k_))
    w = _rand(rng, -32768, 32767, (k_, n_))
    bound = int(np.abs(w).sum(axis=0).max()) * 32768
    acc_shift = n.acc_preshift(bound)
    assert acc_shift > 0
    # bias values that put half of the accumulators exactly on an SRS tie
    acc = a @ w
    half = 1 << (acc_shift - 1)
    bias = (half - (acc[0] % (1 << acc_shift))).astype(np.int64)
    mult = _rand(rng, 2**30, 2**31 - 1, (n_,))
    shift = _rand(rng, 30, 50, (n_,))
    for requant in (None, (mult.astype(np.int32), shift, -5, "int16", "conv_even")):
        got = n.reference_gemm_int(
            a.astype(np.int16),
            w.astype(np.int16),
            "int16",
            bias=bias,
            acc_shift=acc_shift,
            requant=requant,
        )
        want = exact.gemm_int(
            a.tolist(),
            w.tolist(),
            mode="int16",
            bias=bias.tolist(),
            acc_shift=acc_shift,
            requant=None
            if requant is None
            else (mult.tolist(), shift.tolist(), -5, "int16", "conv_even"),
        )
        assert got.tolist() == want


def test_fold_pass_zero_point_terms_match_exact() -> None:
    """The pass that folds MatMul(DQ(x), DQ(W)) into an integer GEMM: its weight, bias and
    requantisation reproduce sum (x - zx)(w - zw) exactly, for uint8 x and asymmetric int8 W."""
    from codesign.ir.graph import DequantizeLinear, KernelGraph, MatMul, QuantizeLinear, TensorType
    from codesign.passes.pipeline import to_hardware

    rng = np.random.default_rng(7)
    m_, k_, n_ = 4, 24, 6
    kg = KernelGraph(inputs=["xq"], outputs=["yq"])
    kg.types["xq"] = TensorType((m_, k_), "uint8")
    w = _rand(rng, -100, 100, (k_, n_)).astype(np.int8)
    zw = np.int8(9)
    consts = {
        "sx": np.float32(0.02),
        "zx": np.uint8(131),
        "w": w,
        "sw": np.float32(0.01),
        "zw": zw,
        "sy": np.float32(0.5),
        "zy": np.int8(-3),
    }
    for name, v in consts.items():
        kg.constants[name] = np.asarray(v)
        kg.types[name] = TensorType(np.asarray(v).shape, str(np.asarray(v).dtype))
    for t, shape in (("xd", (m_, k_)), ("wd", (k_, n_)), ("y", (m_, n_))):
        kg.types[t] = TensorType(shape, "float32")
    kg.types["yq"] = TensorType((m_, n_), "int8")
    for op in (
        DequantizeLinear("dqx", ("xq", "sx", "zx"), ("xd",)),
        DequantizeLinear("dqw", ("w", "sw", "zw"), ("wd",)),
        MatMul("fc", ("xd", "wd"), ("y",)),
        QuantizeLinear("qy", ("y", "sy", "zy"), ("yq",), dtype="int8"),
    ):
        kg.append(op)
    to_hardware(kg)
    (gemm,) = kg.ops
    r = gemm.requant
    assert gemm.dtype == "int8" and r is not None
    x = _rand(rng, 0, 255, (m_, k_))
    got = n.reference_gemm_int(
        x.astype(np.uint8),
        kg.const(gemm.weight),
        gemm.dtype,
        bias=kg.const(gemm.bias) if gemm.bias else None,
        requant=(kg.const(r.multiplier), kg.const(r.shift), r.zero_point, r.dtype, r.rounding),
    )
    mult = np.broadcast_to(kg.const(r.multiplier), (n_,)).tolist()
    shift = np.broadcast_to(kg.const(r.shift), (n_,)).tolist()
    want = exact.gemm_int(
        x.tolist(),
        w.tolist(),
        mode="int8",
        a_zero=131,
        w_zero=[9] * n_,
        requant=(mult, shift, -3, "int8", "conv_even"),
    )
    assert got.tolist() == want
