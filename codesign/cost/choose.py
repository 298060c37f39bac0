"""Choosing the block, tile and dataflow of a temporal GEMM when the caller leaves them open.

One cost model: every candidate is timed by :func:`codesign.cost.estimate_temporal_gemm` on its
fastest dataflow that fits (:func:`codesign.cost.tiles.tile_estimate`). For each block of
``chains x cascade`` cores that fits the array, the tile comes from
:func:`codesign.cost.tiles.search_tile` (CP-SAT narrows, the model decides; the scheduler uses the
same search), unless the caller fixes it. The fastest configuration wins, ranked by
:func:`codesign.cost.tiles.rank_key`. The result carries the Tempus-policy comparisons for the
modelled gain: Tempus's streaming on its own best tile on the same block, and on its best block.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from codesign.boards import Board
from codesign.cost.resources import PlUsage
from codesign.cost.temporal import GemmEstimate
from codesign.cost.tiles import SOLVER_TIME_LIMIT, check_tile, rank_key, search_tile, tile_estimate
from codesign.cost.workload import DATAFLOWS, GemmWorkload, TemporalConfig
from codesign.errors import FitError, OptionError

_CHAINS = (1, 2, 4)
_CASCADE = (1, 2, 4, 8)


@dataclass(frozen=True)
class Choice:
    """The chosen estimate and what it is compared with.

    ``tempus``: Tempus's policy (host-replicated streaming) on its own best tile on the chosen
    block. ``tempus_best``: Tempus's policy on its best block and tile among the blocks searched
    (the same as ``tempus`` when the block was fixed). ``rejected``: reason -> count.
    """

    estimate: GemmEstimate
    tempus: GemmEstimate
    considered: int
    rejected: dict[str, int]
    notes: tuple[str, ...] = ()
    tempus_best: GemmEstimate | None = None

    @property
    def gain_over_tempus(self) -> float:
        """Modelled speed-up over Tempus's policy on its best tile on the same block."""
        return self.tempus.time_s / self.estimate.time_s

    @property
    def gain_over_tempus_best(self) -> float:
        """Modelled speed-up over Tempus's policy on its best block and tile."""
        ref = self.tempus_best or self.tempus
        return ref.time_s / self.estimate.time_s


def _best_on_block(
    board: Board,
    w: GemmWorkload,
    ch: int,
    ca: int,
    tile: tuple[int, int, int] | None,
    flow: str | None,
    kw: dict,
    pl: PlUsage | None,
    time_limit_s: float,
) -> GemmEstimate:
    if tile is None:
        return search_tile(
            board, w, ch, ca, dataflow=flow, pl=pl, time_limit_s=time_limit_s, **kw
        ).estimate
    cfg = TemporalConfig(ch, ca, *tile, **kw)
    est = tile_estimate(board, w, cfg, flow, pl)
    if est is None:
        raise FitError(f"tile {'x'.join(map(str, tile))} on block {ch}x{ca} fits no dataflow")
    return est


def choose_temporal_config(
    board: Board,
    workload: GemmWorkload,
    *,
    chains: int | None = None,
    cascade: int | None = None,
    tile: tuple[int, int, int] | None = None,
    dataflow: str | None = None,
    pl_clock_mhz: float | None = None,
    plio_bits: int = 128,
    pl: PlUsage | None = None,
    time_limit_s: float = SOLVER_TIME_LIMIT,
) -> Choice:
    """Best temporal configuration for ``workload`` on ``board`` with the given parts fixed.

    Raises :class:`OptionError` for bad fixed parts (a tile that is not a multiple of the native
    mmul shape included) and :class:`FitError` when nothing fits, naming the most common reason.
    """
    if dataflow is not None and dataflow not in DATAFLOWS:
        raise OptionError(f"dataflow must be one of {', '.join(DATAFLOWS)}, not {dataflow!r}")
    if workload.dtype not in board.aie.mmul_shapes:
        raise OptionError(
            f"dtype must be one of {', '.join(board.aie.mmul_shapes)} on {board.name}, not {workload.dtype!r}"
        )
    if tile is not None:
        check_tile(board, workload.dtype, tile)
    kw = dict(pl_clock_mhz=pl_clock_mhz, plio_bits=plio_bits)
    TemporalConfig(**kw)  # validates the clock and width before any search
    blocks = [
        (ch, ca)
        for ch, ca in product(
            _CHAINS if chains is None else (chains,), _CASCADE if cascade is None else (cascade,)
        )
        if ch * ca <= board.aie.tiles or (chains is not None and cascade is not None)
    ]
    best: GemmEstimate | None = None
    tempus: dict[tuple[int, int], GemmEstimate] = {}
    considered = 0
    rejected: dict[str, int] = {}
    for ch, ca in blocks:
        considered += 1
        try:
            est = _best_on_block(board, workload, ch, ca, tile, dataflow, kw, pl, time_limit_s)
            tempus[(ch, ca)] = (
                est
                if est.plan.name == "tempus"
                else _best_on_block(board, workload, ch, ca, tile, "tempus", kw, pl, time_limit_s)
            )
        except FitError as e:
            reason = str(e).split(": ", 1)[-1]
            rejected[reason] = rejected.get(reason, 0) + 1
            continue
        if best is None or rank_key(est) < rank_key(best):
            best = est
    if best is None:
        reason = max(rejected, key=rejected.get) if rejected else "no candidate"
        raise FitError(
            f"GEMM {workload.label()} does not fit {board.name}: no temporal configuration fits "
            f"({reason}, in {rejected.get(reason, 0)} of {considered} blocks)"
        )
    c = best.config
    same = tempus[(c.chains, c.cascade)]
    tempus_best = min(tempus.values(), key=rank_key)
    notes = tuple(best.notes) + (
        f"searched {considered} blocks; tiles by CP-SAT narrowing and the reported model (deterministic)",
    )
    return Choice(best, same, considered, rejected, notes, tempus_best)
