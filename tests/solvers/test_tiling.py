"""One cost model: the scheduler's tile against an exhaustive search under the reported model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codesign.boards import load
from codesign.cost import GemmWorkload, TemporalConfig
from codesign.cost.tiles import exhaustive_tile, search_tile, tile_estimate
from codesign.cost.tiles import tiling_problem as tiling_problem_of
from codesign.errors import FitError, OptionError
from codesign.ir.plan import Block, Tile
from codesign.schedulers.tempus import parse_block, schedule_gemm
from codesign.solvers.tiling import UNIT_S, all_tiles

#: Done-when table of issue 9 item 4: (board, block, M, K, N, dtype).
TABLE = [
    ("ve2302", Block(2, 8), 1024, 1024, 1024, "int16"),
    ("ve2302", Block(2, 8), 512, 512, 512, "int16"),
    ("vek280", Block(2, 8), 1, 4096, 4096, "int8"),
    ("vek280", Block(2, 8), 128, 3072, 768, "int8"),
    ("ve2302", Block(2, 8), 1000, 999, 37, "int16"),  # divides nothing
    ("vek280", Block(1, 4), 33, 70, 19, "bf16"),
]


@pytest.mark.parametrize("board, block, M, K, N, dtype", TABLE)
def test_scheduler_tile_is_the_exhaustive_optimum_of_the_reported_model(
    board, block, M, K, N, dtype
) -> None:
    """The scheduler's tile (CP-SAT narrowing, reported model deciding) is the tile an exhaustive
    search over every fitting tile finds under the reported model: same tile, same time."""
    b = load(board)
    s = schedule_gemm(b, M, K, N, dtype, block)
    assert s.solver.status == "OPTIMAL" and s.solver.fallback is None
    oracle = exhaustive_tile(
        b,
        GemmWorkload(M, K, N, dtype),
        block.chains,
        block.cascade,
        plio_bits=max(b.plio.widths_bits),
    )
    c = oracle.config
    assert (s.tile.m, s.tile.k, s.tile.n) == (c.tile_m, c.tile_k, c.tile_n)
    chosen = tile_estimate(
        b,
        GemmWorkload(M, K, N, dtype),
        TemporalConfig(
            block.chains,
            block.cascade,
            s.tile.m,
            s.tile.k,
            s.tile.n,
            plio_bits=max(b.plio.widths_bits),
        ),
    )
    assert chosen.time_s <= oracle.time_s * 1.005
    assert s.block_cycles == chosen.cycles
    assert (s.dataflow, s.reuse_plan or "tempus") == (c.dataflow, oracle.plan.name)


@pytest.mark.parametrize(
    "board, M, K, N, dtype, flow",
    [
        ("ve2302", 96, 200, 40, "int16", None),
        ("vek280", 30, 500, 70, "int8", "tempus"),
        ("vek280", 57, 129, 300, "int8", None),
        ("ve2302", 200, 61, 77, "int16", "reuse"),
        ("ve2302", 33, 70, 19, "bf16", None),
    ],
)
def test_pruned_oracle_equals_brute_force(board, M, K, N, dtype, flow) -> None:
    """The lower bound the search prunes with is a bound: timing every tile gives the same."""
    b, w = load(board), GemmWorkload(M, K, N, dtype)
    full = exhaustive_tile(b, w, 2, 4, dataflow=flow, prune=False)
    assert exhaustive_tile(b, w, 2, 4, dataflow=flow) == full
    assert search_tile(b, w, 2, 4, dataflow=flow).estimate == full


def test_lower_bound_never_exceeds_the_reported_time() -> None:
    b, w = load("ve2302"), GemmWorkload(100, 300, 50, "int16")
    base = TemporalConfig(2, 4, 4, 4, 4)
    p = tiling_problem_of(b, w, base)
    for a, bb, c in all_tiles(p)[::7]:
        est = tile_estimate(b, w, replace(base, tile_m=4 * a, tile_k=4 * bb, tile_n=4 * c))
        assert p.lower_bound(a, bb, c) * UNIT_S <= est.time_s


def test_fallback_gives_the_same_tile() -> None:
    b, w = load("ve2302"), GemmWorkload(300, 300, 300, "int16")
    solved = search_tile(b, w, 2, 8)
    fallback = search_tile(b, w, 2, 8, time_limit_s=0)
    assert solved.solver.fallback is None and "UNKNOWN" in fallback.solver.fallback
    assert fallback.estimate == solved.estimate


def test_schedule_counts_and_memory() -> None:
    s = schedule_gemm(load("vek280"), 1024, 1024, 1024, "int16")
    assert s.core_memory_bytes <= 4 * 64 * 1024 - 1024  # own and neighbour data memories
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
        schedule_gemm(board, 1024, 1024, 1024, "int8", tile=Tile(512, 256, 256))


def test_no_native_mode_is_a_fit_error() -> None:
    with pytest.raises(FitError, match="no native bf16"):
        schedule_gemm(load("vck190"), 8, 8, 8, "bf16")


@pytest.mark.parametrize("text", ["2x", "x8", "2*8", "", "0x8", "2x0"])
def test_parse_block_rejects(text: str) -> None:
    with pytest.raises(OptionError):
        parse_block(text)
