"""Tempus-style temporal GEMM scheduling on a fixed, resource-invariant block of AIE-ML cores.

The block is ``chains`` cascade chains of ``cascade`` cores (default 2 x 8 = 16 cores, as in
Tempus). K is split over the cascade (core l of a chain takes the l-th k-slice of every K pass and
the cascade sums the partials), N over the chains (chain c owns the c-th n-wide column group of
every N tile), and output tiles are walked over time as graph iterations. The PL streams one A
tile per cascade position (broadcast to every chain), one B tile per core, and drains one C tile
per chain: ``cascade + chains*cascade`` PLIOs in and ``chains`` out.

The per-core tile and the dataflow are chosen by the reported cost model
(:mod:`codesign.cost.tiles`), with CP-SAT (:mod:`codesign.solvers.tiling`) narrowing the search.
"""

from __future__ import annotations

import re
from dataclasses import replace

from codesign.boards import Board
from codesign.cost.temporal import PortStreams
from codesign.cost.workload import DTYPE_BYTES
from codesign.errors import FitError, OptionError
from codesign.ir.plan import Block, SolverReport, TemporalSchedule, Tile
from codesign.ir.tiling import tile_counts
from codesign.solvers.tiling import TilingProblem

DEFAULT_BLOCK = Block(chains=2, cascade=8)
#: Default CP-SAT deterministic time limit per GEMM tile, in seconds.
SOLVER_TIME_LIMIT = 10.0

#: Bytes per element of (A, B) for each compute dtype, from the cost model's one table.
OPERAND_BYTES = {d: (v[0], v[1]) for d, v in DTYPE_BYTES.items()}


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
    plio_in += block.chains  # the PL sequencer's control streams, one per chain (rtp_<chain>)
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
    """The integer lower-bound tiling problem of an M x K x N GEMM of ``dtype`` on ``block``
    (see :mod:`codesign.solvers.tiling`), at the board's clocks and widest PLIO."""
    from codesign.cost.tiles import tiling_problem as problem

    return problem(board, _workload(board, M, K, N, dtype), _config(board, block))


def _workload(board: Board, M: int, K: int, N: int, dtype: str):
    from codesign.cost import GemmWorkload

    aie = board.aie
    if dtype not in aie.mmul_shapes or dtype not in aie.macs_per_cycle:
        raise FitError(
            f"{board.name} ({aie.generation}) has no native {dtype} matrix multiply; "
            f"it supports {', '.join(sorted(aie.mmul_shapes))}"
        )
    return GemmWorkload(M, K, N, dtype)


def _config(board: Board, block: Block, tile: Tile | None = None):
    from codesign.cost import TemporalConfig

    mm, mk, mn = (tile.m, tile.k, tile.n) if tile is not None else (1, 1, 1)
    return TemporalConfig(
        block.chains, block.cascade, mm, mk, mn, plio_bits=max(board.plio.widths_bits)
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
    ports: PortStreams | None = None,
) -> TemporalSchedule:
    """Schedule an M x K x N GEMM on the temporal block.

    ``ports``: the compiled graph's buffer ports when known; every estimate then streams whole
    padded ports (:func:`codesign.cost.tiles.tile_estimate`).

    The tile (unless given) and the dataflow are the reported cost model's choice
    (:func:`codesign.cost.tiles.search_tile`: CP-SAT narrows, the model decides);
    ``block_cycles`` is that model's time of the GEMM in AIE cycles.
    """
    from codesign.cost.tiles import check_tile, search_tile, tile_estimate

    check_block(board, block)
    w = _workload(board, M, K, N, dtype)
    mm, mk, mn = board.aie.mmul_shapes[dtype]
    plio_bits = max(board.plio.widths_bits)
    if tile is None:
        found = search_tile(
            board,
            w,
            block.chains,
            block.cascade,
            plio_bits=plio_bits,
            time_limit_s=time_limit_s,
            ports=ports,
        )
        est, report = found.estimate, found.solver
        tile = Tile(est.config.tile_m, est.config.tile_k, est.config.tile_n)
    else:
        try:
            check_tile(board, dtype, (tile.m, tile.k, tile.n), "tile")
        except OptionError:
            raise OptionError(
                f"tile {tile} must be a multiple of the native {dtype} mmul {mm}x{mk}x{mn}"
            ) from None
        est = tile_estimate(board, w, _config(board, block, tile), ports=ports)
        if est is None:
            problem = tiling_problem(board, M, K, N, dtype, block)
            raise FitError(
                f"tile {tile} needs {problem.memory(*problem.factors(tile))} bytes of core data "
                f"memory or more on-chip storage than {board.name} has "
                f"(core budget {problem.memory_budget} bytes)"
            )
        report = SolverReport("given", "GIVEN", 0)
    tc = tile_counts(M, K, N, block.chains, block.cascade, tile.m, tile.k, tile.n)
    plio_in, plio_out = plios(block)
    return TemporalSchedule(
        M=M,
        K=K,
        N=N,
        dtype=dtype,
        native=(mm, mk, mn),
        block=block,
        tile=tile,
        m_tiles=tc.m_tiles,
        n_tiles=tc.n_tiles,
        k_passes=tc.k_passes,
        padded_M=tc.padded_M,
        padded_K=tc.padded_K,
        padded_N=tc.padded_N,
        core_memory_bytes=est.resources.core_buffer_bytes,
        plio_in=plio_in,
        plio_out=plio_out,
        block_cycles=est.cycles,
        solver=report,
        dataflow=est.config.dataflow,
        reuse_plan=est.plan.name if est.plan.name != "tempus" else None,
    )


def choose_dataflow(
    board: Board, sched: TemporalSchedule, ports: PortStreams | None = None
) -> TemporalSchedule:
    """Pick how operands reach the block for this schedule's tile: Tempus's host-replicated
    streaming or an on-chip reuse plan, whichever the reported model finds faster and fits
    (:func:`codesign.cost.tiles.tile_estimate`, the model :func:`schedule_gemm` ranks tiles by)."""
    from codesign.cost.tiles import tile_estimate

    w = _workload(board, sched.M, sched.K, sched.N, sched.dtype)
    est = tile_estimate(board, w, _config(board, sched.block, sched.tile), ports=ports)
    if est is None:
        raise FitError(f"tile {sched.tile} on block {sched.block} fits no dataflow on {board.name}")
    return replace(
        sched,
        dataflow=est.config.dataflow,
        reuse_plan=est.plan.name if est.plan.name != "tempus" else None,
        block_cycles=est.cycles,
    )
