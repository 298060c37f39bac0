"""The stream layouts of the temporal block: how B (weights), A and C tiles are ordered.

``tempus.b/1`` is the order in which the PL replays the weights into the block: for each N tile,
for each K pass, for each chain, for each cascade core, that core's k x n tile in native-mmul
blocks (k/mk x n/mn blocks of mk x mn, each row-major). The matrix is zero-padded to
(padded_K, padded_N) first. :func:`unpack_b` is the exact inverse view used by the simulator.
``tempus.b4/1`` is the same order for int4 weights, two per byte (see :data:`B4_LAYOUT`).
``tempus.a/1`` and ``tempus.c/1`` are the in-tile element orders of the cores' A and C buffers
(native mmul blocks, :data:`A_LAYOUT`, :data:`C_LAYOUT`): the PL tilers and untilers and the AIE
kernels both follow them, and both x86 checks build their data with these functions.
"""

from __future__ import annotations

import numpy as np

from codesign.ir.plan import TemporalSchedule

B_LAYOUT = "tempus.b/1"


def pack_b(w: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """Pack a [K, N] weight into the ``tempus.b/1`` stream order (a flat array)."""
    _, mk, mn = s.native
    L, C = s.block.cascade, s.block.chains
    k, n = s.tile.k, s.tile.n
    wp = np.zeros((s.padded_K, s.padded_N), dtype=w.dtype)
    wp[: w.shape[0], : w.shape[1]] = w
    v = wp.reshape(s.k_passes, L, k // mk, mk, s.n_tiles, C, n // mn, mn)
    # -> [n_tile][k_pass][chain][core][kb][nb][mk][mn]
    return np.ascontiguousarray(v.transpose(4, 0, 5, 1, 2, 6, 3, 7)).reshape(-1)


def unpack_b(flat: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """View a ``tempus.b/1`` stream as per-core tiles [n_tile, k_pass, chain, core, k, n]."""
    _, mk, mn = s.native
    L, C = s.block.cascade, s.block.chains
    k, n = s.tile.k, s.tile.n
    v = flat.reshape(s.n_tiles, s.k_passes, C, L, k // mk, n // mn, mk, mn)
    return v.transpose(0, 1, 2, 3, 4, 6, 5, 7).reshape(s.n_tiles, s.k_passes, C, L, k, n)


#: The N:M-compressed form of ``tempus.b/1`` (see :func:`nm_order`).
NM_LAYOUT = "tempus.b-nm/1"
#: The position stream that goes with an ``NM_LAYOUT`` value stream (see :func:`pack_index`).
NM_INDEX_LAYOUT = "tempus.b-nm-index/1"


def nm_order(flat: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """The ``tempus.b/1`` stream ``flat`` as rows that ``tempus.b-nm/1`` compresses.

    ``tempus.b-nm/1`` (stream format): the native mk x mn blocks of ``tempus.b/1``, in its
    order; each block is taken column by column (N outer, K fastest), so a row of the result
    is one block column: ``mk`` consecutive K values of one output channel. Each row is cut into
    groups of ``m`` (``mk`` must be a multiple of ``m``: groups start at multiples of ``m`` in K)
    and every group is sent as ``n`` (value, position) slots in codesign's fixed-rate N:M format
    (:func:`codesign.sim.numerics.nm_compress`). The value file holds the slots' values in this
    order; the index file (``tempus.b-nm-index/1``) the positions, packed by
    :func:`pack_index`. One PLIO beat of values plus its positions expands (the N:M expander
    block, which computes :func:`codesign.sim.numerics.nm_expand`) into whole block columns;
    the PL writes each expanded block into the PLIO in ``tempus.b/1`` order (a fixed lane
    permutation within a block). Returns an array [blocks * mn, mk].
    """
    _, mk, mn = s.native
    blocks = flat.reshape(-1, mk, mn)
    return np.ascontiguousarray(blocks.transpose(0, 2, 1)).reshape(-1, mk)


def from_nm_order(rows: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """The inverse of :func:`nm_order`: block-column rows back to the flat ``tempus.b/1``."""
    _, mk, mn = s.native
    blocks = rows.reshape(-1, mn, mk)
    return np.ascontiguousarray(blocks.transpose(0, 2, 1)).reshape(-1)


def pack_index(indices: np.ndarray, bits: int) -> np.ndarray:
    """Positions of ``bits`` bits each (``bits`` divides 8), packed little-endian into bytes:
    position ``i`` sits in byte ``i * bits // 8`` at bit ``i * bits % 8``; the last byte is
    zero-padded."""
    per = 8 // bits
    v = np.asarray(indices, dtype=np.uint8).reshape(-1)
    v = np.concatenate([v, np.zeros(-v.size % per, dtype=np.uint8)]).reshape(-1, per)
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    return np.bitwise_or.reduce(v << shifts, axis=1).astype(np.uint8)


def unpack_index(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first ``count`` positions of a :func:`pack_index` byte stream (uint8)."""
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    v = (np.asarray(packed, dtype=np.uint8).reshape(-1, 1) >> shifts) & ((1 << bits) - 1)
    return v.reshape(-1)[:count].astype(np.uint8)


#: The int4 weight stream of the int8 x int4 mode: the ``tempus.b/1`` element order of the
#: signed int4 weights (-8..7), two per byte, element 2i in the low nibble and 2i+1 in the high
#: one (two's-complement nibbles): half the bytes of the int8 stream, byte for byte the order the
#: PL replays into the block.
B4_LAYOUT = "tempus.b4/1"


def pack_b4(w: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """Pack a [K, N] int4-valued weight (-8..7) into the ``tempus.b4/1`` byte stream (uint8)."""
    flat = pack_b(np.asarray(w, dtype=np.int8), s).astype(np.int64) & 0x0F
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, dtype=np.int64)])
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


def unpack_b4(stream: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """View a ``tempus.b4/1`` byte stream as per-core int4 tiles (int8 values -8..7)
    [n_tile, k_pass, chain, core, k, n]; the inverse of :func:`pack_b4`."""
    p = np.asarray(stream, dtype=np.uint8)
    nib = np.stack([p & 0x0F, p >> 4], axis=-1).reshape(-1).astype(np.int16)
    vals = np.where(nib >= 8, nib - 16, nib).astype(np.int8)
    return unpack_b(vals[: s.padded_K * s.padded_N], s)


#: The element order of an A tile in the cores' A buffer (and on the ``a_{l}`` streams): the
#: m x k tile in native nm x nk mmul blocks, blocks row-major (block (mb, kb) at element offset
#: ``(mb * k/nk + kb) * nm*nk``), each block row-major. The GEMM kernel loads block (mb, kb) as
#: one ``aie::load_v<MMUL::size_A>``; the PL A tilers send this order (see :func:`a_tile_order`).
A_LAYOUT = "tempus.a/1"
#: The element order of a C tile in the last core's C buffer (and on the ``c_{c}`` streams): the
#: m x n tile in native nm x nn blocks, blocks row-major (block (mb, nb) at element offset
#: ``(mb * n/nn + nb) * nm*nn``), each block row-major: what the kernel's ``aie::store_v`` of one
#: accumulator block writes; the PL C untilers read this order (see :func:`c_tile_order`).
C_LAYOUT = "tempus.c/1"


def _blocked(tile: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[..., R, Q] -> [..., R*Q]: rows x cols blocks, blocks row-major, each block row-major."""
    *lead, R, Q = tile.shape
    if R % rows or Q % cols:
        raise ValueError(f"a {R}x{Q} tile is not made of {rows}x{cols} native blocks")
    v = tile.reshape(*lead, R // rows, rows, Q // cols, cols)
    n = len(lead)
    perm = (*range(n), n, n + 2, n + 1, n + 3)  # -> [..., rb, cb, rows, cols]
    return np.ascontiguousarray(v.transpose(perm)).reshape(*lead, R * Q)


def _unblocked(flat: np.ndarray, R: int, Q: int, rows: int, cols: int) -> np.ndarray:
    """The inverse of :func:`_blocked`: [..., R*Q] -> [..., R, Q]."""
    *lead, size = flat.shape
    if size != R * Q or R % rows or Q % cols:
        raise ValueError(f"{size} elements are not a {R}x{Q} tile of {rows}x{cols} blocks")
    v = flat.reshape(*lead, R // rows, Q // cols, rows, cols)
    n = len(lead)
    perm = (*range(n), n, n + 2, n + 1, n + 3)  # -> [..., rb, rows, cb, cols]
    return np.ascontiguousarray(v.transpose(perm)).reshape(*lead, R, Q)


def a_tile_order(tile: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """A tiles [..., m, k] (``s.tile``) -> their ``tempus.a/1`` buffer order [..., m*k]: element
    ``x`` of the buffer is tile element ``((x // (nm*nk)) // (k/nk) * nm + x % (nm*nk) // nk,
    (x // (nm*nk)) % (k/nk) * nk + x % nk)`` with (nm, nk, _) = ``s.native``."""
    nm, nk, _ = s.native
    return _blocked(np.asarray(tile), nm, nk)


def a_tile_from_order(flat: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """The inverse of :func:`a_tile_order`: ``tempus.a/1`` buffers [..., m*k] -> [..., m, k]."""
    nm, nk, _ = s.native
    return _unblocked(np.asarray(flat), s.tile.m, s.tile.k, nm, nk)


def c_tile_order(tile: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """C tiles [..., m, n] (``s.tile``) -> their ``tempus.c/1`` buffer order [..., m*n]: element
    ``x`` of the buffer is tile element ``((x // (nm*nn)) // (n/nn) * nm + x % (nm*nn) // nn,
    (x // (nm*nn)) % (n/nn) * nn + x % nn)`` with (nm, _, nn) = ``s.native``."""
    nm, _, nn = s.native
    return _blocked(np.asarray(tile), nm, nn)


def c_tile_from_order(flat: np.ndarray, s: TemporalSchedule) -> np.ndarray:
    """The inverse of :func:`c_tile_order`: ``tempus.c/1`` buffers [..., m*n] -> [..., m, n]."""
    nm, _, nn = s.native
    return _unblocked(np.asarray(flat), s.tile.m, s.tile.n, nm, nn)
