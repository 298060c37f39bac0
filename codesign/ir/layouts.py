"""The stream layouts of the temporal block: how B (weights) and A tiles are ordered.

``tempus.b/1`` is the order in which the PL replays the weights into the block: for each N tile,
for each K pass, for each chain, for each cascade core, that core's k x n tile in native-mmul
blocks (k/mk x n/mn blocks of mk x mn, each row-major). The matrix is zero-padded to
(padded_K, padded_N) first. :func:`unpack_b` is the exact inverse view used by the simulator.
``tempus.b4/1`` is the same order for int4 weights, two per byte (see :data:`B4_LAYOUT`).
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
