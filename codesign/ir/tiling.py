"""Tile counts and padding of a GEMM on the temporal block: the one definition.

A GEMM ``M x K x N`` on a block of ``chains x cascade`` cores with a per-core tile ``m x k x n``
is walked as ``m_tiles x n_tiles`` graph iterations (an ``m x chains*n`` output tile each), and
each iteration makes ``k_passes`` passes of ``cascade*k`` over K. Every dimension is padded up to
a whole number of tiles. The solver, the cost model, the scheduler, the stream layouts and the
simulator all read their counts from :func:`tile_counts`. Imports nothing of codesign's.
"""

from __future__ import annotations

from dataclasses import dataclass


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive integers, exact for any size (no float)."""
    return -(-a // b)


@dataclass(frozen=True)
class TileCounts:
    """Counts of tiles and the padded dimensions (``padded_M = m_tiles * m`` and so on)."""

    m_tiles: int
    n_tiles: int
    k_passes: int
    padded_M: int
    padded_K: int
    padded_N: int

    @property
    def iterations(self) -> int:
        """Graph iterations: one per output tile of the block."""
        return self.m_tiles * self.n_tiles


def tile_counts(
    M: int, K: int, N: int, chains: int, cascade: int, m: int, k: int, n: int
) -> TileCounts:
    """Tile counts and padding of ``M x K x N`` on ``chains x cascade`` cores with tile ``m x k x n``.

    All arguments are positive integers (the tile sizes may also be numpy integer arrays, for
    the solver's vectorised enumeration); the caller validates them.
    """
    m_tiles = ceil_div(M, m)
    n_tiles = ceil_div(N, chains * n)
    k_passes = ceil_div(K, cascade * k)
    return TileCounts(
        m_tiles=m_tiles,
        n_tiles=n_tiles,
        k_passes=k_passes,
        padded_M=m_tiles * m,
        padded_K=k_passes * cascade * k,
        padded_N=n_tiles * chains * n,
    )
