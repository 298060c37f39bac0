"""Tempus-style temporal GEMM scheduling on a fixed, resource-invariant block of AIE-ML cores.

The block is ``chains`` cascade chains of ``cascade`` cores (default 2 x 8 = 16 cores, as in
Tempus). K is split over the cascade (core l of a chain takes the l-th k-slice of every K pass and
the cascade sums the partials), N over the chains (chain c owns the c-th n-wide column group of
every N tile), and output tiles are walked over time as graph iterations. The PL streams one A
tile per cascade position (broadcast to every chain), one B tile per core, and drains one C tile
per chain: ``cascade + chains*cascade`` PLIOs in and ``chains`` out.

The per-core tile comes from the CP-SAT model of :mod:`codesign.solvers.tiling`.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from fractions import Fraction

from codesign.boards import Board
from codesign.errors import FitError, OptionError
from codesign.ir.plan import Block, SolverReport, TemporalSchedule, Tile
from codesign.solvers.tiling import TilingProblem, block_cycles, solve_tile

DEFAULT_BLOCK = Block(chains=2, cascade=8)
#: Default CP-SAT deterministic time limit per GEMM tile, in seconds.
SOLVER_TIME_LIMIT = 10.0

#: Bytes per element of (A, B) for each compute dtype; the accumulator is 4 bytes (acc32/fp32).
OPERAND_BYTES = {"int8": (1, 1), "int16": (2, 2), "int16x8": (2, 1), "bf16": (2, 2), "fp32": (4, 4)}


def parse_block(text: str) -> Block:
    """``"2x8"`` -> Block(chains=2, cascade=8); OptionError for anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise OptionError(f"--block must be CHAINSxCASCADE such as 2x8, not {text!r}")
    chains, cascade = int(m.group(1)), int(m.group(2))
    if chains < 1 or cascade < 1:
        raise OptionError(f"--block {text}: chains and cascade must be at least 1")
    return Block(chains, cascade)


def check_block(board: Board, block: Block) -> None:
    """Raise FitError when ``block`` cannot be placed on ``board`` (cores or PLIOs)."""
    if block.cores > board.aie.tiles:
        raise FitError(
            f"--block {block} needs {block.cores} AIE tiles, but {board.name} has "
            f"{board.aie.tiles} (over by {block.cores - board.aie.tiles})"
        )
    if block.cascade > board.aie.tiles or block.cascade > board.aie.columns * board.aie.rows:
        raise FitError(
            f"--block {block}: a cascade of {block.cascade} cores does not fit {board.name}"
        )
    plio_in, plio_out = plios(block)
    if plio_in > board.plio_in_limit:
        raise FitError(
            f"--block {block} needs {plio_in} PL->AIE streams, but {board.name} has at most "
            f"{board.plio_in_limit} (over by {plio_in - board.plio_in_limit})"
        )
    if plio_out > board.plio_out_limit:
        raise FitError(
            f"--block {block} needs {plio_out} AIE->PL streams, but {board.name} has at most "
            f"{board.plio_out_limit}"
        )


def plios(block: Block) -> tuple[int, int]:
    """(PL->AIE, AIE->PL) streams of the block: A per cascade position, B per core, C per chain."""
    return block.cascade + block.cores, block.chains


def tiling_problem(board: Board, M: int, K: int, N: int, dtype: str, block: Block) -> TilingProblem:
    """The CP-SAT tiling problem for an M x K x N GEMM of ``dtype`` on ``block``."""
    aie = board.aie
    if dtype not in aie.mmul_shapes or dtype not in aie.macs_per_cycle:
        raise FitError(
            f"{board.name} ({aie.generation}) has no native {dtype} matrix multiply; "
            f"it supports {', '.join(sorted(aie.mmul_shapes))}"
        )
    native = tuple(aie.mmul_shapes[dtype])
    bytes_a, bytes_b = OPERAND_BYTES[dtype]
    tm = board.extra.get("tiling_model", {})
    plio_bits = max(board.plio.widths_bits)
    return TilingProblem(
        M=M,
        K=K,
        N=N,
        native=native,  # type: ignore[arg-type]
        chains=block.chains,
        cascade=block.cascade,
        memory_budget=aie.data_memory_bytes - aie.stack_reserve_bytes,
        bytes_a=bytes_a,
        bytes_b=bytes_b,
        bytes_acc=4,
        cycles_per_mmul=Fraction(math.prod(native), aie.macs_per_cycle[dtype]),
        stream_bytes_per_cycle=Fraction(plio_bits, 8)
        * Fraction(board.pl.default_clock_mhz).limit_denominator(1000)
        / Fraction(aie.clock_mhz).limit_denominator(1000),
        pass_overhead=int(tm.get("kernel_pass_overhead_cycles", 0)),
        iteration_overhead=int(tm.get("iteration_overhead_cycles", 0)),
    )


def schedule_gemm(
    board: Board,
    M: int,
    K: int,
    N: int,
    dtype: str,
    block: Block = DEFAULT_BLOCK,
    tile: Tile | None = None,
    time_limit_s: float = SOLVER_TIME_LIMIT,
) -> TemporalSchedule:
    """Schedule an M x K x N GEMM on the temporal block; the tile from CP-SAT unless given."""
    check_block(board, block)
    problem = tiling_problem(board, M, K, N, dtype, block)
    mm, mk, mn = problem.native
    if tile is None:
        tile, report = solve_tile(problem, time_limit_s)
    else:
        if tile.m % mm or tile.k % mk or tile.n % mn:
            raise OptionError(
                f"tile {tile} must be a multiple of the native {dtype} mmul {mm}x{mk}x{mn}"
            )
        a, b, c = tile.m // mm, tile.k // mk, tile.n // mn
        if problem.memory(a, b, c) > problem.memory_budget:
            raise FitError(
                f"tile {tile} needs {problem.memory(a, b, c)} bytes of core data memory, "
                f"only {problem.memory_budget} are available"
            )
        report = SolverReport("given", "GIVEN", 0)
    a, b, c = tile.m // mm, tile.k // mk, tile.n // mn
    m_tiles = math.ceil(M / tile.m)
    n_tiles = math.ceil(N / (block.chains * tile.n))
    k_passes = math.ceil(K / (block.cascade * tile.k))
    cycles = block_cycles(problem, tile)
    plio_in, plio_out = plios(block)
    return TemporalSchedule(
        M=M,
        K=K,
        N=N,
        dtype=dtype,
        native=(mm, mk, mn),
        block=block,
        tile=tile,
        m_tiles=m_tiles,
        n_tiles=n_tiles,
        k_passes=k_passes,
        padded_M=m_tiles * tile.m,
        padded_K=k_passes * block.cascade * tile.k,
        padded_N=n_tiles * block.chains * tile.n,
        core_memory_bytes=problem.memory(a, b, c),
        plio_in=plio_in,
        plio_out=plio_out,
        block_cycles=cycles,
        solver=report,
    )


def choose_dataflow(board: Board, sched: TemporalSchedule) -> TemporalSchedule:
    """Pick how operands reach the block for this schedule's tile: Tempus's host-replicated
    streaming or on-chip reuse, whichever the performance model finds faster and fits."""
    from codesign.cost import GemmWorkload, choose_temporal_config

    t = sched.tile
    choice = choose_temporal_config(
        board,
        GemmWorkload(sched.M, sched.K, sched.N, sched.dtype),
        chains=sched.block.chains,
        cascade=sched.block.cascade,
        tile=(t.m, t.k, t.n),
    )
    cfg = choice.estimate.config
    return replace(
        sched,
        dataflow=cfg.dataflow,
        reuse_plan=choice.estimate.plan.name if cfg.dataflow != "tempus" else None,
    )
