"""Fixed kernel tile variants: one compiled graph serves every layer of a model.

The AIE GEMM kernel is compiled for one per-core tile shape, and every core's program memory
(16 KB on AIE-ML, AM020) holds the kernels of all the layers the graph walks. So the layers'
tiles must come from a small fixed set of variants: at most :data:`MAX_VARIANTS` per compute
dtype (a codesign setting, not a device fact; the planner takes it as an option).

One cost model decides. Each distinct GEMM proposes its own best tile
(:func:`codesign.cost.tiles.search_tile`, the scheduler's search); the cost of running a GEMM on a
variant is :func:`codesign.cost.tiles.tile_estimate`'s modelled time (its fastest dataflow that
fits) **in the graph the set of variants makes**: the graph's buffer ports are sized for the
set's largest tiles (:func:`ports_of`), and a GEMM on a smaller variant streams its tiles padded
to them, as the plan's estimate counts them. The set of at most V variants minimising the sum
over the model's GEMMs (each on the best variant of the set, weighted by how often the GEMM
occurs) is chosen: exhaustively over the subsets of the candidates when they are few, else
greedily with exchange steps. The whole-model
time differs from that sum by terms that do not depend on the tiles (one launch, a
reconfiguration per layer), so this minimises the modelled whole-model time over the candidates.
Because every subset of one candidate is searched, the choice is never worse than any single
candidate shared by every layer. Deterministic: ties keep the earlier candidate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

from codesign.boards import Board
from codesign.cost.temporal import PortStreams
from codesign.cost.tiles import SOLVER_TIME_LIMIT, search_tile, tile_estimate
from codesign.cost.workload import DTYPE_BYTES, GemmWorkload, TemporalConfig
from codesign.errors import FitError
from codesign.ir.plan import Tile

#: Default largest number of GEMM kernel tile variants per dtype in one compiled graph.
MAX_VARIANTS = 2
#: Largest number of subsets searched exhaustively; beyond it, greedy with exchange steps.
EXHAUSTIVE_SUBSETS = 20_000


@dataclass(frozen=True)
class VariantChoice:
    """The variants (dtype, tile) chosen, and the tile each distinct workload runs with.

    ``time_s``: the modelled sum over the model's GEMMs (occurrences counted) of their time on
    their variant in the graph of the chosen variants (ports padded), as each per-launch estimate
    gives it; ``own_time_s`` the same with every GEMM on its own best tile in a graph of its own
    (a lower bound of ``time_s``). ``exhaustive``: every subset was searched. ``ports``: the
    buffer ports of the chosen variants' graph (:func:`ports_of`), which the GEMMs' dataflow
    choice and the batched products' tile search also stream.
    """

    variants: tuple[tuple[str, Tile], ...]
    tiles: dict[GemmWorkload, Tile]
    time_s: float
    own_time_s: float
    candidates: int
    exhaustive: bool
    ports: PortStreams | None = None

    def tile_for(self, w: GemmWorkload) -> Tile:
        return self.tiles[w]


def config_for(board: Board, chains: int, cascade: int, tile: Tile) -> TemporalConfig:
    """The block and tile as the scheduler configures them (the board's widest PLIO)."""
    return TemporalConfig(
        chains, cascade, tile.m, tile.k, tile.n, plio_bits=max(board.plio.widths_bits)
    )


def variant_time(
    board: Board,
    w: GemmWorkload,
    chains: int,
    cascade: int,
    tile: Tile,
    ports: PortStreams | None = None,
) -> float:
    """Modelled time of ``w`` on the variant ``tile`` in a graph with buffer ports ``ports``
    (inf when no dataflow fits)."""
    est = tile_estimate(board, w, config_for(board, chains, cascade, tile), ports=ports)
    return math.inf if est is None else est.time_s


def _beat_bytes(board: Board) -> int:
    """Bytes of one PL<->AIE stream beat: the board's widest PLIO."""
    return max(board.plio.widths_bits) // 8


def _whole_beats(nbytes: int, beat: int) -> int:
    return -(-nbytes // beat) * beat


def ports_of(board: Board, variants: Sequence[tuple[str, Tile]]) -> PortStreams | None:
    """The buffer ports, as the cost model streams them, of a graph whose GEMM kernels are
    ``variants`` (dtype, tile): each port holds the largest variant's tile in whole PLIO beats
    (the model's element sizes, :data:`codesign.cost.workload.DTYPE_BYTES`). None for no variant."""
    if not variants:
        return None
    beat = _beat_bytes(board)

    def beats(nbytes: float) -> int:
        return _whole_beats(math.ceil(nbytes), beat)

    sizes = [(DTYPE_BYTES[d], t) for d, t in variants]
    return PortStreams(
        a=max(beats(t.m * t.k * b[0]) for b, t in sizes),
        b=max(beats(t.k * t.n * b[1]) for b, t in sizes),
        c=max(beats(t.m * t.n * b[2]) for b, t in sizes),
    )


def ports_with_rows(
    board: Board, ports: PortStreams, chains: int, cascade: int, n: int, n_out: int, params: int
) -> PortStreams:
    """``ports`` grown to hold one row per core of an AIE-placed nonlinear layer (the layout of
    :mod:`codesign.aie.nonlinear`, fp32: a chain's rows of ``n`` on A for every chain, ``params``
    parameter rows (at least one) on B, a row of ``n_out`` per cascade position on C)."""
    beat = _beat_bytes(board)

    def beats(nbytes: int) -> int:
        return _whole_beats(nbytes, beat)

    f32 = 4
    return PortStreams(
        a=max(ports.a, beats(chains * n * f32)),
        b=max(ports.b, beats(max(1, params) * n * f32)),
        c=max(ports.c, beats(cascade * n_out * f32)),
    )


def padding_penalty_s(
    board: Board,
    gemms: Sequence[tuple[GemmWorkload, Tile]],
    chains: int,
    cascade: int,
    ports: PortStreams,
    grown: PortStreams,
) -> float:
    """Modelled seconds the GEMMs ``gemms`` (workload, tile; repeats counted) lose when the
    graph's ports grow from ``ports`` to ``grown`` (each tile padded to larger ports)."""
    if grown == ports:
        return 0.0
    # by distinct (workload, tile): a model repeats a few GEMM shapes many times
    return sum(
        n
        * (
            variant_time(board, w, chains, cascade, t, grown)
            - variant_time(board, w, chains, cascade, t, ports)
        )
        for (w, t), n in Counter(gemms).items()
    )


def _cover(
    time: Callable[[int, int, tuple[int, ...]], float], counts: list[int], subset: Sequence[int]
) -> float:
    sub = tuple(subset)
    return sum(n * min(time(i, j, sub) for j in sub) for i, n in enumerate(counts))


def _best_subset(
    time: Callable[[int, int, tuple[int, ...]], float], counts: list[int], n: int, v: int
) -> tuple[tuple[int, ...], bool]:
    """Indices of at most ``v`` of the ``n`` candidates minimising the weighted cover cost;
    ``time(i, j, subset)``: workload i on candidate j in the graph of ``subset``."""
    # no shortcut when n <= v: a larger set pads every tile to larger ports, so all of the
    # candidates together need not be the best set
    total = sum(math.comb(n, r) for r in range(1, v + 1))
    if total <= EXHAUSTIVE_SUBSETS:
        best, best_t = (), math.inf
        for r in range(1, v + 1):
            for sub in combinations(range(n), r):
                t = _cover(time, counts, sub)
                if t < best_t:
                    best, best_t = sub, t
        return best, True
    # greedy: the candidate that lowers the cover most, then exchanges until none helps
    chosen: list[int] = []
    for _ in range(v):
        pick = min(
            (j for j in range(n) if j not in chosen),
            key=lambda j: (_cover(time, counts, [*chosen, j]), j),
        )
        chosen.append(pick)
    improved = True
    while improved:
        improved = False
        base = _cover(time, counts, chosen)
        for i in range(len(chosen)):
            for j in range(n):
                if j in chosen:
                    continue
                trial = chosen[:i] + [j] + chosen[i + 1 :]
                if _cover(time, counts, trial) < base * (1 - 1e-12):
                    chosen, base, improved = trial, _cover(time, counts, trial), True
    return tuple(sorted(chosen)), False


def _in_graph(
    board: Board,
    chains: int,
    cascade: int,
    ws: list[GemmWorkload],
    dtype: str,
    cands: list[Tile],
    earlier: tuple[tuple[str, Tile], ...],
) -> Callable[[int, int, tuple[int, ...]], float]:
    """``time(i, j, subset)``: workload ``ws[i]`` on candidate ``cands[j]`` in the graph whose
    ``dtype`` kernels are the candidates ``subset`` (and the ``earlier`` variants)."""

    def time(i: int, j: int, sub: tuple[int, ...]) -> float:
        ports = ports_of(board, [*earlier, *((dtype, cands[x]) for x in sub)])
        return variant_time(board, ws[i], chains, cascade, cands[j], ports)

    return time


def choose_variants(
    board: Board,
    workloads: Sequence[GemmWorkload],
    chains: int,
    cascade: int,
    *,
    max_variants: int = MAX_VARIANTS,
    time_limit_s: float = SOLVER_TIME_LIMIT,
) -> VariantChoice:
    """At most ``max_variants`` tiles per dtype for the model's GEMMs ``workloads`` (in order,
    repeats counted) on a ``chains x cascade`` block, chosen by the cost model.

    Raises :class:`FitError` when a GEMM fits no tile (as the scheduler would), and
    :class:`ValueError` for ``max_variants`` < 1."""
    if max_variants < 1:
        raise ValueError(f"max_variants must be at least 1, not {max_variants}")
    counts: dict[GemmWorkload, int] = {}
    for w in workloads:
        counts[w] = counts.get(w, 0) + 1
    own: dict[GemmWorkload, Tile] = {}
    own_time: dict[GemmWorkload, float] = {}
    plio_bits = max(board.plio.widths_bits)
    for w in counts:
        est = search_tile(
            board, w, chains, cascade, plio_bits=plio_bits, time_limit_s=time_limit_s
        ).estimate
        own[w] = Tile(est.config.tile_m, est.config.tile_k, est.config.tile_n)
        own_time[w] = est.time_s
    variants: list[tuple[str, Tile]] = []
    tiles: dict[GemmWorkload, Tile] = {}
    total = 0.0
    exhaustive = True
    n_candidates = 0
    for dtype in dict.fromkeys(w.dtype for w in counts):
        ws = [w for w in counts if w.dtype == dtype]
        cands = list(dict.fromkeys(own[w] for w in ws))
        n_candidates += len(cands)
        # the other dtypes' kernels, chosen before, share the graph's ports
        time = _in_graph(board, chains, cascade, ws, dtype, cands, tuple(variants))
        n = [counts[w] for w in ws]
        sub, ex = _best_subset(time, n, len(cands), max_variants)
        exhaustive &= ex
        for i, w in enumerate(ws):
            j = min(sub, key=lambda j: (time(i, j, sub), j))
            if math.isinf(time(i, j, sub)):
                raise FitError(f"GEMM {w.label()} fits none of the kernel tile variants chosen")
            tiles[w] = cands[j]
        used = tuple(j for j in sub if any(tiles[w] == cands[j] for w in ws))
        variants += [(dtype, cands[j]) for j in used]
        total += _cover(time, n, used)
    return VariantChoice(
        variants=tuple(variants),
        tiles=tiles,
        time_s=total,
        own_time_s=sum(own_time[w] * counts[w] for w in counts),
        candidates=n_candidates,
        exhaustive=exhaustive,
        ports=ports_of(board, variants),
    )
