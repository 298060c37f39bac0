"""The tile of a temporal GEMM, chosen by the reported cost model with CP-SAT narrowing the search.

One cost model: the time of a tile is :func:`codesign.cost.estimate_temporal_gemm` on its fastest
dataflow that fits the board (:func:`tile_estimate`). :func:`search_tile` finds the tile of
smallest time in two steps (see :mod:`codesign.solvers.tiling` for why this is exact):

1. CP-SAT minimises a proven lower bound of that time, built from the model's own terms
   (compute, cascade, PLIO, DDR, launch), over the smallest tile of every tile-count class;
2. the reported model times CP-SAT's tile (an upper bound ``U`` of the optimum), CP-SAT lists
   every tile whose lower bound is at most ``U``, and the reported model decides among them.

:func:`exhaustive_tile` is the test oracle: the reported model over every tile that fits.
Both break ties by :func:`rank_key`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from codesign.boards import Board
from codesign.cost.dataflow import REUSE_PLANS, reuse_plan
from codesign.cost.params import optional, perf_params
from codesign.cost.resources import PlUsage, capacities
from codesign.cost.temporal import GemmEstimate, PortStreams, estimate_temporal_gemm
from codesign.cost.workload import DTYPE_BYTES, GemmWorkload, TemporalConfig, Tiling
from codesign.errors import FitError, OptionError
from codesign.ir.plan import SolverReport, Tile
from codesign.solvers.tiling import (
    UNIT_S,
    TilingProblem,
    all_tiles,
    candidates,
    check_native_fits,
    solve_bound,
)

#: Default CP-SAT deterministic time limit per solve, in seconds.
SOLVER_TIME_LIMIT = 10.0


def rank_key(e: GemmEstimate) -> tuple:
    """How estimates are ranked everywhere (scheduler, estimate, oracle): modelled time, then
    fewer cores, then the smaller tile (m*k*n, then m, k, n), then fewer DDR bytes, then Tempus's
    policy before reuse plans in :data:`REUSE_PLANS` order."""
    c = e.config
    flows = ("tempus", *REUSE_PLANS)
    return (
        e.time_s,
        c.cores,
        c.tile_m * c.tile_k * c.tile_n,
        c.tile_m,
        c.tile_k,
        c.tile_n,
        e.ddr_bytes,
        flows.index(e.plan.name),
    )


def _floor_units(seconds: float) -> int:
    # rounded down (with a hair of slack for float error) so that the bound stays a bound
    return max(0, math.floor(seconds / UNIT_S * (1 - 1e-9)))


def memory_budget(board: Board, cores: int) -> int:
    """Bytes one core's buffers may take: its reachable data memory (own and neighbour modules,
    less the stack), and its share of the whole array's data memory."""
    modules = optional(board, "perf", "neighbour_memory_modules") or 1
    per_core = modules * board.aie.data_memory_bytes - board.aie.stack_reserve_bytes
    return min(per_core, board.aie.tiles * board.aie.data_memory_bytes // cores)


def tiling_problem(
    board: Board, w: GemmWorkload, base: TemporalConfig, dataflow: str | None = None
) -> TilingProblem:
    """The integer lower-bound problem of ``w`` on the block and clocks of ``base`` for the
    dataflows ``dataflow`` allows (``"tempus"``: Tempus's streaming only, a tighter bound)."""
    if w.dtype not in board.aie.mmul_shapes or w.dtype not in board.aie.macs_per_cycle:
        raise FitError(
            f"{board.name} ({board.aie.generation}) has no native {w.dtype} matrix multiply; "
            f"it supports {', '.join(sorted(board.aie.mmul_shapes))}"
        )
    native = tuple(int(v) for v in board.aie.mmul_shapes[w.dtype])
    mm, mk, mn = native
    p = perf_params(board, base.pl_clock_mhz, base.aie_clock_mhz)
    ba, bb, bo, acc = DTYPE_BYTES[w.dtype]
    f = p.aie_clock_hz
    plio_rate = min(base.plio_bits / 8 * p.pl_clock_hz, p.stream_bytes_per_cycle * f)
    replicated = dataflow == "tempus"
    # the fastest source an operand may stream from: on-chip DMA only when a reuse plan may run
    fastest = plio_rate if replicated else max(plio_rate, p.dma_bytes_per_cycle * f)
    macs = board.aie.macs_per_cycle[w.dtype]
    ddr = p.ddr_bytes_s
    return TilingProblem(
        M=w.M,
        K=w.K,
        N=w.N,
        native=native,  # type: ignore[arg-type]
        chains=base.chains,
        cascade=base.cascade,
        memory_budget=memory_budget(board, base.cores),
        # the CP-SAT memory terms take whole bytes: a sub-byte operand (int4 B) is counted as a
        # byte there (conservative); the model's own estimate counts its true half byte
        bytes_a=math.ceil(ba),
        bytes_b=math.ceil(bb),
        bytes_out=bo,
        bytes_acc=acc,
        fixed_units=_floor_units(p.fixed_overhead_s),
        compute_units=_floor_units(mm * mk * mn / macs / p.kernel_efficiency / f),
        cascade_units=_floor_units(mm * mn * acc / p.cascade_bytes_per_cycle / f)
        if base.cascade > 1
        else 0,
        stream_a_units=_floor_units(mm * mk * ba / fastest),
        stream_b_units=_floor_units(mk * mn * bb / fastest),
        stream_c_units=_floor_units(mm * mn * bo / plio_rate),
        ddr_a_units=_floor_units(mm * base.cascade * mk * ba / ddr),
        ddr_b_units=_floor_units(base.cascade * mk * base.chains * mn * bb / ddr),
        ddr_c_units=_floor_units(mm * base.chains * mn * bo / ddr),
        replicated=replicated,
    )


def _flows(dataflow: str | None) -> tuple[tuple[str, str | None], ...]:
    tempus = (("tempus", None),)
    reuse = tuple(("reuse", name) for name in REUSE_PLANS)
    if dataflow == "tempus":
        return tempus
    if dataflow == "reuse":
        return reuse
    return tempus + reuse


def tile_estimate(
    board: Board,
    w: GemmWorkload,
    config: TemporalConfig,
    dataflow: str | None = None,
    pl: PlUsage | None = None,
    ports: PortStreams | None = None,
) -> GemmEstimate | None:
    """The reported model's best estimate of ``config``'s block and tile over the dataflows
    allowed (``None``: Tempus's and every reuse plan), or None when no dataflow fits the board.
    ``ports``: the compiled graph's buffer ports, when the tile is to run in a graph whose ports
    are known (the estimate then streams whole padded ports, as the plan's estimate does).

    ``dataflow="reuse"`` with no feasible reuse plan gives the model's fallback to Tempus's
    streaming (noted on the estimate), as :func:`estimate_temporal_gemm` does."""
    return _memo(_tile_estimate, board, w, config, dataflow, pl, ports)


#: Results by (function, board identity, arguments). A Board holds dicts (unhashable), so the key
#: uses its id and the entry keeps the board itself, checked on every hit (ids can be reused).
_CACHE: dict[tuple, tuple[Board, object]] = {}
_CACHE_SIZE = 100_000


def _memo(fn, board: Board, *args):
    key = (fn.__name__, id(board), *args)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is board:
        return hit[1]
    value = fn(board, *args)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = (board, value)
    return value


def _tile_estimate(board, w, config, dataflow, pl, ports):
    best = None
    tiling = Tiling.of(w, config)
    for flow, plan in _flows(dataflow):
        if plan is not None and not reuse_plan(board, w, config, tiling, plan).feasible:
            continue  # cheap check first: the model would fall back to Tempus's streaming
        est = estimate_temporal_gemm(
            board, w, replace(config, dataflow=flow, reuse_plan=plan), pl=pl, ports=ports
        )
        if flow == "reuse" and est.plan.name != plan:
            continue  # that plan is infeasible; the model fell back to Tempus's streaming
        if any(r.over for r in capacities(board, est.resources)):
            continue
        if best is None or rank_key(est) < rank_key(best):
            best = est
    if best is None and dataflow == "reuse":
        est = estimate_temporal_gemm(
            board, w, replace(config, dataflow="reuse"), pl=pl, ports=ports
        )
        if not any(r.over for r in capacities(board, est.resources)):
            best = est
    return best


@dataclass(frozen=True)
class TileSearch:
    """The chosen estimate, how the solver got there, and how many tiles the model timed."""

    estimate: GemmEstimate
    solver: SolverReport
    timed: int


def _base(board: Board, w: GemmWorkload, chains: int, cascade: int, **kw) -> TemporalConfig:
    mm, mk, mn = board.aie.mmul_shapes.get(w.dtype, (1, 1, 1))
    return TemporalConfig(chains, cascade, mm, mk, mn, **kw)


def search_tile(
    board: Board,
    w: GemmWorkload,
    chains: int,
    cascade: int,
    *,
    dataflow: str | None = None,
    pl_clock_mhz: float | None = None,
    plio_bits: int = 128,
    pl: PlUsage | None = None,
    time_limit_s: float = SOLVER_TIME_LIMIT,
    ports: PortStreams | None = None,
) -> TileSearch:
    """The tile (and dataflow) of smallest reported time for ``w`` on a ``chains x cascade`` block.

    ``ports``: the compiled graph's buffer ports (:func:`tile_estimate`). Padding to them only
    adds time, so CP-SAT's bound stays a lower bound and the search stays exact.

    Raises :class:`FitError` when no tile fits (naming why), :class:`OptionError` for a bad
    dtype, clock or PLIO width.
    """
    base = _base(board, w, chains, cascade, pl_clock_mhz=pl_clock_mhz, plio_bits=plio_bits)
    return _memo(_search, board, w, base, dataflow, pl, float(time_limit_s), ports)


def _search(board, w, base, dataflow, pl, time_limit_s, ports) -> TileSearch:
    p = tiling_problem(board, w, base, dataflow)
    tile, report = solve_bound(p, time_limit_s)
    first = tile_estimate(board, w, _with_tile(base, tile), dataflow, pl, ports)
    if first is None:
        raise _no_fit(board, w, base, tile)
    # U: the reported time of CP-SAT's tile, in units, rounded up with float slack
    upper = math.ceil(first.time_s / UNIT_S * (1 + 1e-9)) + 1
    tiles, note = candidates(p, upper, time_limit_s)
    best, timed = first, 1
    for abc in tiles:
        # candidates come in lower-bound order (approximate for huge GEMMs, hence the slack):
        # once the bound passes the best time, no later candidate can win
        if p.lower_bound(*abc) * UNIT_S > best.time_s * (1 + 1e-6):
            break
        est = tile_estimate(board, w, _with_tile(base, p.tile(*abc)), dataflow, pl, ports)
        timed += 1
        if est is not None and rank_key(est) < rank_key(best):
            best = est
    if note and not report.fallback:
        report = replace(report, fallback=note)
    return TileSearch(best, report, timed)


def _with_tile(base: TemporalConfig, tile: Tile) -> TemporalConfig:
    return replace(base, tile_m=tile.m, tile_k=tile.k, tile_n=tile.n)


def _no_fit(board: Board, w: GemmWorkload, base: TemporalConfig, tile: Tile) -> FitError:
    est = estimate_temporal_gemm(board, w, replace(_with_tile(base, tile), dataflow="tempus"))
    over = [
        f"{r.resource} {r.used}{r.unit} > {r.available}{r.unit}"
        for r in capacities(board, est.resources)
        if r.over
    ]
    return FitError(
        f"GEMM {w.label()} on a {base.chains}x{base.cascade} block does not fit {board.name}: "
        + (", ".join(over) or "no dataflow fits")
    )


def exhaustive_tile(
    board: Board,
    w: GemmWorkload,
    chains: int,
    cascade: int,
    *,
    dataflow: str | None = None,
    pl_clock_mhz: float | None = None,
    plio_bits: int = 128,
    pl: PlUsage | None = None,
    prune: bool = True,
) -> GemmEstimate:
    """The test oracle: the reported model over every tile whose buffers fit, ranked by
    :func:`rank_key`; no CP-SAT and no tile-count classes.

    ``prune``: time the tiles in order of their lower bound and stop once the bound exceeds the
    best time found (exact while the lower bound is one; ``prune=False`` times every tile, to
    test that)."""
    base = _base(board, w, chains, cascade, pl_clock_mhz=pl_clock_mhz, plio_bits=plio_bits)
    p = tiling_problem(board, w, base, dataflow)
    check_native_fits(p)
    tiles = all_tiles(p)
    if prune:
        tiles.sort(key=lambda abc: (int(p.lower_bound(*abc)), abc))
    best = None
    for abc in tiles:
        if prune and best is not None and p.lower_bound(*abc) * UNIT_S > best.time_s * (1 + 1e-9):
            break
        est = tile_estimate(board, w, _with_tile(base, p.tile(*abc)), dataflow, pl)
        if est is not None and (best is None or rank_key(est) < rank_key(best)):
            best = est
    if best is None:
        raise FitError(f"GEMM {w.label()}: no tile fits {board.name}")
    return best


def check_tile(
    board: Board, dtype: str, tile: tuple[int, int, int], option: str = "--tile"
) -> None:
    """:class:`OptionError` when ``tile`` is not a multiple of the native mmul shape of ``dtype``."""
    if dtype not in board.aie.mmul_shapes:
        return  # the dtype check names the supported ones
    mm, mk, mn = board.aie.mmul_shapes[dtype]
    m, k, n = tile
    if m % mm or k % mk or n % mn:
        raise OptionError(
            f"{option} {m}x{k}x{n} must be a multiple of the native {dtype} mmul shape "
            f"{mm}x{mk}x{mn} on {board.name}"
        )
