"""Choosing the block, tile and dataflow of a temporal GEMM when the caller leaves them open.

Deterministic enumeration (no solver needed: the space is a few thousand points and the model is
closed-form): blocks of ``chains x cascade`` cores that fit the array, tiles in multiples of the
native ``aie::mmul`` shape whose ping-pong buffers fit a core's reachable data memory, and both
dataflows. The fastest configuration that fits the board wins (ties: fewer cores, then less DDR
traffic). The result carries Tempus's policy on the same block and tile, for the modelled gain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product
from math import ceil

from codesign.boards import Board
from codesign.cost.resources import PlUsage, capacities
from codesign.cost.temporal import GemmEstimate, estimate_temporal_gemm
from codesign.cost.workload import DATAFLOWS, GemmWorkload, TemporalConfig
from codesign.errors import FitError, OptionError

_CHAINS = (1, 2, 4)
_CASCADE = (1, 2, 4, 8)
_MN = (16, 32, 64, 128)


@dataclass(frozen=True)
class Choice:
    """The chosen estimate, the Tempus-policy estimate on the same block/tile, and what the
    search looked at (``rejected``: reason -> count)."""

    estimate: GemmEstimate
    tempus: GemmEstimate
    considered: int
    rejected: dict[str, int]
    notes: tuple[str, ...] = ()

    @property
    def gain_over_tempus(self) -> float:
        """Modelled speed-up of the choice over Tempus's replicated streaming on the same block."""
        return self.tempus.time_s / self.estimate.time_s


def _round_up(x: int, q: int) -> int:
    return ceil(x / q) * q


def _tile_candidates(dim: int, q: int, fixed: int | None) -> list[int]:
    if fixed is not None:
        return [fixed]
    need = _round_up(max(dim, 1), q)
    out = sorted({min(_round_up(v, q), need) for v in _MN})
    return out


def _k_candidates(K: int, cascade: int, q: int) -> list[int]:
    full = _round_up(ceil(K / cascade), q)
    ks, k = [], full
    while k >= q:
        ks.append(k)
        if k == q:
            break
        k = _round_up(k // 2, q)
    return ks


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
) -> Choice:
    """Best temporal configuration for ``workload`` on ``board`` with the given parts fixed.

    Raises :class:`OptionError` for bad fixed parts and :class:`FitError` when nothing fits,
    naming the most common reason.
    """
    if dataflow is not None and dataflow not in DATAFLOWS:
        raise OptionError(f"dataflow must be one of {', '.join(DATAFLOWS)}, not {dataflow!r}")
    if workload.dtype not in board.aie.mmul_shapes:
        raise OptionError(
            f"dtype must be one of {', '.join(board.aie.mmul_shapes)} on {board.name}, not {workload.dtype!r}"
        )
    sa, sk, sn = board.aie.mmul_shapes[workload.dtype]
    blocks = [
        (ch, ca)
        for ch, ca in product(
            _CHAINS if chains is None else (chains,), _CASCADE if cascade is None else (cascade,)
        )
        if ch * ca <= board.aie.tiles or (chains is not None and cascade is not None)
    ]
    flows = DATAFLOWS if dataflow is None else (dataflow,)
    best: tuple | None = None
    considered = 0
    rejected: dict[str, int] = {}
    for ch, ca in blocks:
        ms = _tile_candidates(workload.M, sa, tile[0] if tile else None)
        ns = _tile_candidates(ceil(workload.N / ch), sn, tile[2] if tile else None)
        ks = [tile[1]] if tile else _k_candidates(workload.K, ca, sk)
        for m, k, n, flow in product(ms, ks, ns, flows):
            cfg = TemporalConfig(
                ch, ca, m, k, n, dataflow=flow, pl_clock_mhz=pl_clock_mhz, plio_bits=plio_bits
            )
            considered += 1
            est = estimate_temporal_gemm(board, workload, cfg, pl=pl)
            over = [r.resource for r in capacities(board, est.resources) if r.over]
            if over:
                for r in over:
                    rejected[r] = rejected.get(r, 0) + 1
                continue
            key = (est.time_s, cfg.cores, est.ddr_bytes, flow != "tempus")
            if best is None or key < best[0]:
                best = (key, est)
    if best is None:
        reason = max(rejected, key=rejected.get) if rejected else "no candidate"
        raise FitError(
            f"GEMM {workload.label()} does not fit {board.name}: no temporal configuration fits "
            f"({reason} overflows in {rejected.get(reason, 0)} of {considered} candidates)"
        )
    est = best[1]
    tempus = (
        est
        if est.config.dataflow == "tempus"
        else estimate_temporal_gemm(
            board, workload, replace(est.config, dataflow="tempus", reuse_plan=None), pl=pl
        )
    )
    notes = tuple(est.notes) + (f"enumerated {considered} configurations (deterministic)",)
    return Choice(est, tempus, considered, rejected, notes)
