"""N:M structured sparsity: compress, expand, prune."""

from __future__ import annotations

import numpy as np


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


#: N:M patterns :func:`best_nm` tries, sparsest first (ties: the smaller group first).
NM_PATTERNS = ((1, 8), (1, 4), (2, 8), (1, 2), (2, 4), (4, 8))


def nm_satisfied(w: np.ndarray, n: int, m: int, axis: int = 0) -> bool:
    """Whether every group of ``m`` consecutive elements of ``w`` along ``axis`` (groups start at
    multiples of ``m``; a short last group counts as zero-padded) has at most ``n`` non-zeros.

    For a GEMM weight [K, N], ``axis=0`` is "N:M in K", the reduction axis, as AIE-ML's sparse
    mode and NVIDIA's 2:4 take it."""
    _check_nm(n, m)
    nz = np.moveaxis(np.asarray(w) != 0, axis, -1)
    length = nz.shape[-1]
    pad = -length % m
    if pad:
        nz = np.concatenate([nz, np.zeros((*nz.shape[:-1], pad), dtype=bool)], axis=-1)
    counts = nz.reshape(*nz.shape[:-1], -1, m).sum(axis=-1)
    return bool(np.all(counts <= n))


def best_nm(w: np.ndarray, axis: int = 0) -> tuple[int, int] | None:
    """The sparsest pattern of :data:`NM_PATTERNS` that ``w`` satisfies along ``axis``, or None
    (a dense weight). An all-zero weight satisfies 1:8."""
    for n, m in NM_PATTERNS:
        if nm_satisfied(w, n, m, axis):
            return n, m
    return None
