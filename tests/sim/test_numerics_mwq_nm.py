"""The numerics added for the RTL blocks: MWQ (D2MoE) reconstruction and the N:M format."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.sim import numerics as nu

# ---- MWQ -------------------------------------------------------------------------------------


def test_mwq_encode_is_nested_and_improves_with_planes() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 256)).astype(np.float32)
    code = nu.mwq_encode(w, base_bits=2, n_planes=3, group_size=128)
    assert code.base.shape == w.shape and code.planes.shape == (3, *w.shape)
    assert code.zero_point.shape == (6, 2) and code.scales.shape == (4, 6, 2)
    assert code.base.max() <= 3 and set(np.unique(code.planes)) <= {0, 1}
    errors = [np.abs(nu.mwq_dequantize(code, k) - w).mean() for k in range(4)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False))
    # a lower precision is exactly the prefix of a higher one
    top = nu.mwq_dequantize(code, 3)
    prefix = nu.mwq_dequantize(code, 2)
    last = np.repeat(code.scales[3], 128, axis=-1) * (2.0 * code.planes[2] - 1.0)
    np.testing.assert_allclose(top, prefix + last, rtol=1e-5, atol=1e-6)


def test_mwq_reconstruct_integer_datapath() -> None:
    base = np.array([[0, 1, 2, 3]])
    planes = np.array([[[1, 0, 1, 0]], [[1, 1, 0, 0]]])
    scales = np.array([[10], [4], [2]])  # (1 + P, groups)
    got = nu.mwq_reconstruct(base, planes, [1], scales, [2], 1, "int8", group_size=4)
    acc = 10 * (base - 1) + 4 * (2 * planes[0] - 1) + 2 * (2 * planes[1] - 1)
    np.testing.assert_array_equal(got, nu.round_shift(acc, 1, "conv_even"))
    only_base = nu.mwq_reconstruct(base, planes, [1], scales, [0], 0, "int8", group_size=4)
    np.testing.assert_array_equal(only_base, 10 * (base - 1))
    big = nu.mwq_reconstruct(base, planes, [0], scales * 100, [2], 0, "int8", group_size=4)
    assert big.max() == 127 and big.dtype == np.int8


def test_mwq_integer_matches_float_within_half_a_quantum() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(scale=0.05, size=(4, 128))
    code = nu.mwq_encode(w, base_bits=4, n_planes=2, group_size=64)
    out_scale = float(np.abs(w).max()) / 127
    frac = 10
    ints = nu.mwq_integer_scales(code.scales, out_scale, frac, scale_width=24)
    for k in range(3):
        got = nu.mwq_reconstruct(
            code.base, code.planes, code.zero_point, ints, k, frac, "int16", group_size=64
        )
        want = nu.mwq_dequantize(code, k) / out_scale
        assert np.abs(got - want).max() <= 0.5 + 0.01


def test_mwq_errors() -> None:
    base = np.zeros((1, 4), int)
    planes = np.zeros((1, 1, 4), int)
    with pytest.raises(ValueError, match="n_planes must lie in"):
        nu.mwq_reconstruct(base, planes, 0, np.ones((2, 1)), 2, 0, "int8", group_size=4)
    with pytest.raises(ValueError, match="group_size"):
        nu.mwq_reconstruct(base, planes, 0, np.ones((2, 1)), 1, 0, "int8", group_size=3)
    with pytest.raises(ValueError, match="scales must have"):
        nu.mwq_reconstruct(base, planes, 0, np.ones((3, 1)), 1, 0, "int8", group_size=4)


# ---- N:M ---------------------------------------------------------------------------------------


def test_nm_compress_canonical_form() -> None:
    dense = np.array([[0, 0, 7, -3, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 9]], dtype=np.int8)
    values, index = nu.nm_compress(dense, 2, 4)
    np.testing.assert_array_equal(values, [[7, -3, 0, 0, 5, 0, 0, 9]])
    np.testing.assert_array_equal(index, [[2, 3, 0, 1, 0, 1, 0, 3]])
    np.testing.assert_array_equal(nu.nm_expand(values, index, 2, 4), dense)


def test_nm_compress_rejects_too_dense_groups() -> None:
    with pytest.raises(ValueError, match="group 1 has 3 non-zero values"):
        nu.nm_compress(np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=np.int8), 2, 4)


def test_nm_expand_later_slot_wins_and_index_wraps() -> None:
    values = np.array([[5, 6]], dtype=np.int8)
    np.testing.assert_array_equal(nu.nm_expand(values, np.array([[1, 1]]), 2, 4), [[0, 6, 0, 0]])
    np.testing.assert_array_equal(nu.nm_expand(values, np.array([[4, 7]]), 2, 4), [[5, 0, 0, 6]])


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([(1, 2), (2, 4), (1, 4), (4, 8), (8, 8)]),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_nm_prune_compress_expand_roundtrip(nm: tuple[int, int], groups: int, seed: int) -> None:
    n, m = nm
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(3, groups * m)).astype(np.int8)
    pruned = nu.nm_prune(w, n, m)
    g = pruned.reshape(3, groups, m)
    assert ((g != 0).sum(axis=-1) <= n).all()
    kept = np.abs(g.astype(int)).sum(axis=-1)
    best = np.sort(np.abs(w.reshape(3, groups, m).astype(int)), axis=-1)[..., m - n :].sum(-1)
    np.testing.assert_array_equal(kept, best)  # the n largest magnitudes are kept
    values, index = nu.nm_compress(pruned, n, m)
    assert values.shape == (3, groups * n)
    assert (np.diff(index.reshape(3, groups, n).astype(int), axis=-1) > 0).all()
    np.testing.assert_array_equal(nu.nm_expand(values, index, n, m), pruned)


def test_nm_parameter_errors() -> None:
    with pytest.raises(ValueError, match="power of two"):
        nu.nm_index_bits(6)
    with pytest.raises(ValueError, match="n must lie in"):
        nu.nm_compress(np.zeros(4, np.int8), 5, 4)
    assert nu.nm_index_bits(4) == 2 and nu.nm_index_bits(8) == 3
