"""The CP-SAT tiling model against exhaustive search, and its constraints."""

from __future__ import annotations

import pytest

from codesign.boards import load
from codesign.errors import FitError, OptionError
from codesign.ir.plan import Block, Tile
from codesign.schedulers.tempus import DEFAULT_BLOCK, parse_block, schedule_gemm, tiling_problem
from codesign.solvers.tiling import enumerate_tile, solve_tile


@pytest.mark.parametrize(
    "shape, dtype, block",
    [
        ((7, 100, 33), "int8", DEFAULT_BLOCK),
        ((64, 256, 96), "int16", DEFAULT_BLOCK),
        ((33, 70, 19), "bf16", Block(1, 4)),
        ((256, 512, 256), "int8", Block(2, 4)),
        ((1024, 1024, 1024), "int8", DEFAULT_BLOCK),
    ],
)
def test_cp_sat_reaches_the_exhaustive_optimum(shape, dtype, block) -> None:
    p = tiling_problem(load("vek280"), *shape, dtype, block)
    tile, report = solve_tile(p)
    best_tile, best = enumerate_tile(p)
    assert report.status == "OPTIMAL" and report.fallback is None
    assert report.objective == best
    mm, mk, mn = p.native
    assert tile.m % mm == 0 and tile.k % mk == 0 and tile.n % mn == 0
    assert p.memory(tile.m // mm, tile.k // mk, tile.n // mn) <= p.memory_budget


def test_schedule_counts_and_memory() -> None:
    s = schedule_gemm(load("vek280"), 1024, 1024, 1024, "int16")
    assert s.core_memory_bytes <= 64 * 1024 - 1024
    assert s.graph_iterations == s.m_tiles * s.n_tiles
    assert s.m_tiles == -(-1024 // s.tile.m)
    assert s.n_tiles == -(-1024 // (2 * s.tile.n))
    assert s.k_passes == -(-1024 // (8 * s.tile.k))
    assert (s.plio_in, s.plio_out) == (8 + 16, 2)  # Tempus: 8 A + 16 B in, 2 C out


def test_given_tile_is_checked() -> None:
    board = load("vek280")
    with pytest.raises(OptionError, match="multiple of the native int8 mmul 4x8x8"):
        schedule_gemm(board, 64, 64, 64, "int8", tile=Tile(4, 4, 8))
    with pytest.raises(FitError, match="bytes of core data memory"):
        schedule_gemm(board, 1024, 1024, 1024, "int8", tile=Tile(256, 128, 128))


def test_no_native_mode_is_a_fit_error() -> None:
    with pytest.raises(FitError, match="no native bf16"):
        schedule_gemm(load("vck190"), 8, 8, 8, "bf16")


@pytest.mark.parametrize("text", ["2x", "x8", "2*8", "", "0x8", "2x0"])
def test_parse_block_rejects(text: str) -> None:
    with pytest.raises(OptionError):
        parse_block(text)
