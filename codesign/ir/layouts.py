"""The stream layouts of the temporal block: how B (weights) and A tiles are ordered.

``tempus.b/1`` is the order in which the PL replays the weights into the block: for each N tile,
for each K pass, for each chain, for each cascade core, that core's k x n tile in native-mmul
blocks (k/mk x n/mn blocks of mk x mn, each row-major). The matrix is zero-padded to
(padded_K, padded_N) first. :func:`unpack_b` is the exact inverse view used by the simulator.
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
