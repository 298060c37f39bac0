"""Resource usage of a design and its check against the board's capacity.

AIE cores, memory tiles, PLIOs and buffers are computed by the model; PL LUT/FF/BRAM/URAM/DSP of
generated blocks come from the caller (yosys figures for the RTL, formulas for HLS blocks) through
:class:`PlUsage`. A design that does not fit raises :class:`FitError` naming each overflow and by
how much.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from codesign.boards import Board
from codesign.cost.params import optional
from codesign.errors import FitError


@dataclass(frozen=True)
class PlUsage:
    """PL resources of the generated blocks, supplied by the caller; ``None`` = unknown."""

    lut: int | None = None
    ff: int | None = None
    bram: int | None = None
    uram: int | None = None
    dsp: int | None = None
    source: str = "caller"

    def __add__(self, other: PlUsage) -> PlUsage:
        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return PlUsage(
            *(
                add(getattr(self, f), getattr(other, f))
                for f in ("lut", "ff", "bram", "uram", "dsp")
            ),
            source=f"{self.source} + {other.source}",
        )


@dataclass(frozen=True)
class ResourceUsage:
    """What a design uses. ``core_buffer_bytes`` is per core (own tile plus neighbours).

    ``pl`` is the PL total; ``pl_block`` names the PL block it belongs to, so that layers which
    share a block (every GEMM on the temporal block shares its data mover) count it once.

    ``aie_groups`` names the kernel groups of the temporal block the usage runs on (the
    accumulator tag of each GEMM dtype, :data:`codesign.ir.dtypes.ACC_TAG`): a cascade carries
    one accumulator type, so each tag gets a ``chains x cascade`` block of its own. The AIE
    figures of one group are per block; :meth:`whole_design` counts every group's block.
    """

    aie_cores: int = 0
    memory_tiles: int = 0
    plio_in: int = 0
    plio_out: int = 0
    core_buffer_bytes: int = 0
    aie_data_bytes: int = 0
    memory_tile_bytes: int = 0
    uram_blocks: int = 0
    pl: PlUsage = field(default_factory=PlUsage)
    pl_block: str = ""
    pl_parts: tuple[tuple[str, PlUsage], ...] = ()
    aie_groups: tuple[str, ...] = ()

    def _parts(self) -> tuple[tuple[str, PlUsage], ...]:
        if self.pl_parts:
            return self.pl_parts
        return ((self.pl_block or f"block{id(self)}", self.pl),) if self.pl != PlUsage() else ()

    def shared_with(self, other: ResourceUsage) -> ResourceUsage:
        """Usage of two designs that run one after the other on the same hardware: AIE figures
        are the larger of the two; PL blocks of different names coexist (added), a block named
        twice is counted once."""
        kw = {
            f.name: max(getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if f.name not in ("pl", "pl_block", "pl_parts", "aie_groups")
        }
        kw["aie_groups"] = tuple(sorted({*self.aie_groups, *other.aie_groups}))
        parts = dict(self._parts())
        for name, usage in other._parts():
            parts.setdefault(name, usage)
        total = PlUsage()
        for usage in parts.values():
            total = total + usage
        return ResourceUsage(**kw, pl=total, pl_parts=tuple(parts.items()))

    def whole_design(self) -> ResourceUsage:
        """The usage of the design as built: a block (cores, memory tiles, C PLIOs, data memory)
        for each kernel group. Every group is a full ``chains x cascade`` block and the figures
        held here are the largest layer's, so each group is counted at that size (modelled; the
        A and B PLIOs are shared by the groups, a core's buffer is per core)."""
        groups = len(self.aie_groups)
        if groups <= 1:
            return self
        return replace(
            self,
            aie_cores=self.aie_cores * groups,
            memory_tiles=self.memory_tiles * groups,
            plio_out=self.plio_out * groups,
            aie_data_bytes=self.aie_data_bytes * groups,
            memory_tile_bytes=self.memory_tile_bytes * groups,
        )


@dataclass(frozen=True)
class Capacity:
    """One row of the utilisation table: ``available`` None when the board file lacks it."""

    resource: str
    used: int
    available: int | None
    unit: str = ""

    @property
    def over(self) -> int:
        return 0 if self.available is None else max(0, self.used - self.available)

    @property
    def fraction(self) -> float | None:
        if not self.available:
            return None
        return self.used / self.available


def capacities(board: Board, u: ResourceUsage) -> list[Capacity]:
    """The utilisation table of ``u`` against ``board`` (PL rows only where the caller gave them)."""
    modules = optional(board, "perf", "neighbour_memory_modules") or 1
    per_core = modules * board.aie.data_memory_bytes - board.aie.stack_reserve_bytes
    rows = [
        Capacity("AIE cores", u.aie_cores, board.aie.tiles),
        Capacity("memory tiles", u.memory_tiles, board.memory_tiles.count),
        Capacity("PLIO in", u.plio_in, board.plio_in_limit),
        Capacity("PLIO out", u.plio_out, board.plio_out_limit),
        Capacity("buffer per core", u.core_buffer_bytes, per_core, "B"),
        Capacity(
            "AIE data memory", u.aie_data_bytes, board.aie.tiles * board.aie.data_memory_bytes, "B"
        ),
        Capacity(
            "memory-tile bytes",
            u.memory_tile_bytes,
            board.memory_tiles.count * board.memory_tiles.bytes,
            "B",
        ),
    ]
    pl_avail = {
        "LUT": board.pl.lut,
        "FF": board.pl.ff,
        "BRAM": board.pl.bram36,
        "URAM": board.pl.uram,
        "DSP": board.pl.dsp,
    }
    pl_used = {
        "LUT": u.pl.lut,
        "FF": u.pl.ff,
        "BRAM": u.pl.bram,
        "URAM": (u.pl.uram or 0) + u.uram_blocks,
        "DSP": u.pl.dsp,
    }
    if u.pl.uram is None and not u.uram_blocks:
        pl_used["URAM"] = None
    for name, used in pl_used.items():
        if used is not None:
            rows.append(Capacity(f"PL {name}", used, pl_avail[name]))
    return rows


def require_fit(board: Board, u: ResourceUsage, what: str = "design") -> list[Capacity]:
    """The utilisation table, or :class:`FitError` listing every overflow on one line."""
    rows = capacities(board, u)
    over = [r for r in rows if r.over]
    if over:
        parts = ", ".join(
            f"{r.resource} {r.used}{r.unit} > {r.available}{r.unit} (over by {r.over}{r.unit})"
            for r in over
        )
        raise FitError(f"{what} does not fit {board.name}: {parts}")
    return rows
