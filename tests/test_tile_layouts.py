"""The in-tile element orders of the cores' A and C buffers (``tempus.a/1``, ``tempus.c/1`` in
codesign.ir.layouts): native mmul blocks, blocks row-major, each block row-major; the inverse
functions undo them, also over leading (stacked tile) axes."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.boards import load as load_board
from codesign.ir.layouts import a_tile_from_order, a_tile_order, c_tile_from_order, c_tile_order
from codesign.ir.plan import Block, Tile
from codesign.schedulers.tempus import schedule_gemm


@pytest.fixture(scope="module")
def sched():
    # int8 native 4x8x8: a tile of 3 x 2 x 2 native blocks (m x k x n)
    return schedule_gemm(
        load_board("vek280"), 24, 32, 32, "int8", Block(1, 2), tile=Tile(12, 16, 16)
    )


def test_a_tile_order_is_native_blocks_row_major(sched) -> None:
    nm, nk, _ = sched.native
    m, k = sched.tile.m, sched.tile.k
    t = np.arange(m * k).reshape(m, k)
    flat = a_tile_order(t, sched)
    kb_count = k // nk
    for x in range(m * k):  # the element the PL tiler sends as element x (gemm_layer.h.j2)
        blk, w = divmod(x, nm * nk)
        r = (blk // kb_count) * nm + w // nk
        q = (blk % kb_count) * nk + w % nk
        assert flat[x] == t[r, q]
    # block (mb, kb) is contiguous at (mb * KB + kb) * nm*nk: what the kernel's load_v reads
    assert np.array_equal(
        flat[(1 * kb_count + 1) * nm * nk :][: nm * nk], t[nm : 2 * nm, nk:].ravel()
    )
    assert np.array_equal(a_tile_from_order(flat, sched), t)


def test_c_tile_order_is_native_blocks_row_major(sched) -> None:
    nm, _, nn = sched.native
    m, n = sched.tile.m, sched.tile.n
    t = np.arange(m * n).reshape(m, n)
    flat = c_tile_order(t, sched)
    nb_count = n // nn
    for x in range(m * n):
        blk, w = divmod(x, nm * nn)
        assert flat[x] == t[(blk // nb_count) * nm + w // nn, (blk % nb_count) * nn + w % nn]
    assert not np.array_equal(flat, t.ravel())  # several blocks along n: not row-major
    assert np.array_equal(c_tile_from_order(flat, sched), t)


def test_leading_axes_and_wrong_shapes(sched) -> None:
    m, k, n = sched.tile.m, sched.tile.k, sched.tile.n
    a = np.random.default_rng(0).integers(-128, 128, size=(3, 2, m, k)).astype(np.int8)
    flat = a_tile_order(a, sched)
    assert flat.shape == (3, 2, m * k) and flat.dtype == np.int8
    assert np.array_equal(flat[1, 0], a_tile_order(a[1, 0], sched))
    assert np.array_equal(a_tile_from_order(flat, sched), a)
    c = np.arange(2 * m * n, dtype=np.float32).reshape(2, m, n)
    assert np.array_equal(c_tile_from_order(c_tile_order(c, sched), sched), c)
    with pytest.raises(ValueError, match="native blocks"):
        a_tile_order(np.zeros((m, k + 1)), sched)
    with pytest.raises(ValueError, match="not a"):
        c_tile_from_order(np.zeros(m * n - 1), sched)
