"""DDR traffic and on-chip buffering of the two dataflows of the temporal block.

Tempus's policy (``"tempus"``): for every graph iteration the PL DMA reads the iteration's A panel
(``m x K``, broadcast to the chains) and B panel (``K x chains*n``) from DDR, where the host has
replicated them; A therefore leaves DDR once per N tile and B once per M tile.

``"reuse"`` keeps data on chip so that an operand leaves DDR fewer times. Plans, by what stays:

- ``a_panel``: M tiles outer; the current A panel stays (double-buffered); A is read once, B once
  per M tile.
- ``b_panel``: N tiles outer; the current B panel stays; B once, A once per N tile.
- ``b_resident``: all of B stays, A panels double-buffered: every operand read once.
- ``a_resident``: all of A stays, B panels double-buffered: every operand read once.

Kept data lives in memory tiles first (AIE-ML; each memory tile feeds at most ``mm2s_channels``
streams), placed column by column (:func:`place_in_memory_tiles`), else in PL UltraRAM (two 72-bit ports per block: one block per 128-bit stream at most).
Tempus measured a PL-URAM tiling of A 4.75x slower than its replicated streaming
(REFERENCES.md s3); codesign prefers memory tiles and charges URAM port bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from codesign.boards import Board
from codesign.cost.params import optional
from codesign.cost.workload import DTYPE_BYTES, GemmWorkload, TemporalConfig, Tiling

REUSE_PLANS = ("b_resident", "a_resident", "a_panel", "b_panel")

#: bits one UltraRAM port delivers per PL cycle (288 Kb blocks, 72-bit ports, two ports)
_URAM_PORT_BITS = 72
_URAM_PORTS = 2


@dataclass(frozen=True)
class DataflowPlan:
    """Where each operand comes from and how many bytes leave DDR.

    ``a_source`` / ``b_source``: ``"pl"`` (streamed from DDR through the PL DMA and a PLIO),
    ``"memtile"`` or ``"uram"`` (kept on chip). ``load_streams``: PLIOs that fill the on-chip
    store. ``feasible`` is False with ``why`` naming what overflowed.
    """

    name: str
    ddr_a: int
    ddr_b: int
    ddr_c: int
    onchip_bytes: int
    a_source: str
    b_source: str
    memory_tiles: int = 0
    uram_blocks: int = 0
    load_streams: int = 0
    feasible: bool = True
    why: str = ""

    @property
    def ddr_bytes(self) -> int:
        return self.ddr_a + self.ddr_b + self.ddr_c


@dataclass(frozen=True)
class MemtilePlacement:
    """Where a block's kept bytes sit in the memory-tile row(s): ``per_tile`` bytes of each
    reachable memory tile, west to east (the block's columns and one neighbour on each side)."""

    columns: int
    per_tile: tuple[int, ...]
    capacity: int
    feasible: bool
    why: str = ""

    @property
    def used(self) -> int:
        return sum(1 for b in self.per_tile if b)


def block_columns(board: Board, cores: int) -> int:
    """Columns a block of ``cores`` spans when packed into whole columns of the array."""
    return min(board.aie.columns, ceil(cores / max(board.aie.rows, 1)))


def place_in_memory_tiles(board: Board, cores: int, keep: int, streams: int) -> MemtilePlacement:
    """Place ``keep`` bytes feeding ``streams`` streams of a block of ``cores`` cores, per column.

    The kept data is split evenly over the block's columns (every plan splits A over the cascade
    and B over all cores). Column c's share may sit in the memory tiles of column c or of its east
    and west neighbours (a memory tile's DMA addresses its neighbours: AM020), filled west first,
    each tile to at most ``(1 - perf.memory_tile_margin)`` of its bytes. Streams leave through the
    MM2S channels of the tiles used. Placing streams across further columns is not modelled.
    """
    mt = board.memory_tiles
    cols = block_columns(board, cores)
    per_col_tiles = max(1, mt.count // max(board.aie.columns, 1))
    margin = float(optional(board, "perf", "memory_tile_margin") or 0.0)
    cap = int(mt.bytes * (1 - margin)) * per_col_tiles
    west = 1 if board.aie.columns > cols else 0
    east = 1 if board.aie.columns > cols + west else 0
    n = cols + west + east
    free = [cap] * n
    placed = [0] * n
    demand = [keep // cols + (1 if c < keep % cols else 0) for c in range(cols)]
    for c, need in enumerate(demand):
        own = c + west
        room = sum(free[t] for t in (own - 1, own, own + 1) if 0 <= t < n)
        for t in (own - 1, own, own + 1):  # west neighbour first: leaves room further east
            if 0 <= t < n and need:
                take = min(need, free[t])
                free[t] -= take
                placed[t] += take
                need -= take
        if need:
            return MemtilePlacement(
                cols,
                tuple(placed),
                cap,
                False,
                f"column {c} of the {cols}-column block needs {demand[c]} bytes; its own and "
                f"neighbour memory tiles have {room} left of {cap} each ({margin:.0%} margin)",
            )
    used = sum(1 for b in placed if b) * per_col_tiles
    if streams > used * max(mt.mm2s_channels, 1):
        # more tiles only to have their channels: spread over the reachable tiles
        need_tiles = ceil(streams / max(mt.mm2s_channels, 1))
        if need_tiles > n * per_col_tiles:
            return MemtilePlacement(
                cols,
                tuple(placed),
                cap,
                False,
                f"{streams} streams need {need_tiles} memory tiles' MM2S channels; the block "
                f"reaches {n * per_col_tiles}",
            )
    return MemtilePlacement(cols, tuple(placed), cap, True)


def panel_bytes(w: GemmWorkload, c: TemporalConfig, t: Tiling) -> tuple[int, int]:
    """Bytes of one A panel (m x K) and one B panel (K x chains*n), padded."""
    ba, bb, _, _ = DTYPE_BYTES[w.dtype]
    # whole bytes: a sub-byte operand (int4) packs two elements per byte
    return ceil(c.tile_m * t.k_pad * ba), ceil(t.k_pad * c.chains * c.tile_n * bb)


def _ddr_b(w: GemmWorkload, dense: int) -> int:
    """B bytes leaving DDR: the dense count, times the workload's compression ratio."""
    return dense if w.b_ddr_ratio == 1 else ceil(dense * w.b_ddr_ratio)


def tempus_plan(w: GemmWorkload, c: TemporalConfig, t: Tiling) -> DataflowPlan:
    """Tempus: both panels from DDR every iteration (host-replicated)."""
    a_panel, b_panel = panel_bytes(w, c, t)
    bo = DTYPE_BYTES[w.dtype][2]
    return DataflowPlan(
        name="tempus",
        ddr_a=t.iterations * a_panel,
        ddr_b=_ddr_b(w, t.iterations * b_panel),
        ddr_c=t.m_pad * t.n_pad * bo,
        onchip_bytes=0,
        a_source="pl",
        b_source="pl",
    )


def reuse_plan(
    board: Board, w: GemmWorkload, c: TemporalConfig, t: Tiling, name: str
) -> DataflowPlan:
    """One on-chip plan, placed in memory tiles or else URAM; infeasible plans say why."""
    a_panel, b_panel = panel_bytes(w, c, t)
    bo = DTYPE_BYTES[w.dtype][2]
    c_bytes = t.m_pad * t.n_pad * bo
    a_all, b_all = t.m_tiles * a_panel, t.n_tiles * b_panel
    if name == "a_panel":
        ddr_a, ddr_b, keep, kept = a_all, t.iterations * b_panel, 2 * a_panel, "a"
    elif name == "b_panel":
        ddr_a, ddr_b, keep, kept = t.iterations * a_panel, b_all, 2 * b_panel, "b"
    elif name == "b_resident":
        ddr_a, ddr_b, keep, kept = a_all, b_all, b_all + 2 * a_panel, "ab"
    elif name == "a_resident":
        ddr_a, ddr_b, keep, kept = a_all, b_all, a_all + 2 * b_panel, "ab"
    else:
        raise ValueError(f"reuse plan must be one of {', '.join(REUSE_PLANS)}, not {name!r}")
    # streams the on-chip store must feed each iteration: A goes to `cascade` streams (broadcast
    # over chains), B to chains*cascade streams
    streams = (c.cascade if "a" in kept else 0) + (c.cores if "b" in kept else 0)
    ddr_b = _ddr_b(w, ddr_b)  # kept B is dense on chip (expanded before the PLIO)
    base = dict(name=name, ddr_a=ddr_a, ddr_b=ddr_b, ddr_c=c_bytes, onchip_bytes=keep)
    mt = board.memory_tiles
    why_memtile = ""
    if mt.count > 0 and mt.bytes > 0:
        placement = place_in_memory_tiles(board, c.cores, keep, streams)
        per_col = max(1, mt.count // max(board.aie.columns, 1))
        need = max(placement.used * per_col, ceil(streams / max(mt.mm2s_channels, 1)))
        why_memtile = placement.why
        if placement.feasible:
            src = "memtile"
            return DataflowPlan(
                **base,
                a_source=src if "a" in kept else "pl",
                b_source=src if "b" in kept else "pl",
                memory_tiles=need,
                load_streams=need,
            )
    uram_n, block = board.pl.uram, optional(board, "perf", "uram_block_bytes")
    if uram_n and block:
        per_stream = ceil(128 / (_URAM_PORT_BITS * _URAM_PORTS)) or 1
        need = max(ceil(keep / block), streams * per_stream)
        if need <= uram_n:
            return DataflowPlan(
                **base,
                a_source="uram" if "a" in kept else "pl",
                b_source="uram" if "b" in kept else "pl",
                uram_blocks=need,
            )
    cap = []
    if mt.count:
        cap.append(f"memory tiles ({why_memtile})" if why_memtile else f"{mt.count} memory tiles")
    if uram_n and block:
        cap.append(f"{uram_n} URAM x {block // 1024} KB")
    return DataflowPlan(
        **base,
        a_source="pl",
        b_source="pl",
        feasible=False,
        why=f"{name} keeps {keep} bytes on chip; capacity {' + '.join(cap) or 'none'}",
    )


def plan_for(board: Board, w: GemmWorkload, c: TemporalConfig, t: Tiling) -> DataflowPlan:
    """The plan ``c`` asks for; for ``reuse`` without a named plan, the feasible one moving the
    fewest DDR bytes (ties: least on-chip storage), or Tempus's policy when none is feasible."""
    if c.dataflow == "tempus":
        return tempus_plan(w, c, t)
    if c.reuse_plan is not None:
        return reuse_plan(board, w, c, t, c.reuse_plan)
    plans = [reuse_plan(board, w, c, t, n) for n in REUSE_PLANS]
    ok = [p for p in plans if p.feasible]
    if not ok:
        return plans[0]
    return min(ok, key=lambda p: (p.ddr_bytes, p.onchip_bytes, REUSE_PLANS.index(p.name)))
