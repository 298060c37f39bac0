"""Board data: one JSON file per board, loaded into frozen dataclasses.

Every number in a board file is written as ``{"value": ..., "source": "..."}`` so that its origin
travels with it; an unknown is ``{"value": null, "source": "not gathered ..."}`` and stays ``None``
here. Sections this loader does not type (added by later rooms, e.g. ``power``) are kept as plain
values in :attr:`Board.extra`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from typing import Any

from codesign.errors import BoardError


@dataclass(frozen=True)
class AieArray:
    """The AI Engine array: geometry, clock, per-tile memory and MAC rates."""

    generation: str
    columns: int
    rows: int
    clock_mhz: float
    data_memory_bytes: int
    program_memory_bytes: int
    stack_reserve_bytes: int
    macs_per_cycle: dict[str, int]
    mmul_shapes: dict[str, tuple[int, int, int]]
    cascade_bits: int
    stream_bits: int

    @property
    def tiles(self) -> int:
        return self.columns * self.rows


@dataclass(frozen=True)
class MemoryTiles:
    count: int
    bytes: int
    mm2s_channels: int
    s2mm_channels: int


@dataclass(frozen=True)
class Plio:
    pl_to_aie_per_column: int
    aie_to_pl_per_column: int
    interface_columns: int | None
    widths_bits: tuple[int, ...]
    max_pl_clock_ratio: float


@dataclass(frozen=True)
class ProgrammableLogic:
    default_clock_mhz: float
    lut: int | None
    ff: int | None
    bram36: int | None
    uram: int | None
    dsp: int | None


@dataclass(frozen=True)
class Ddr:
    type: str | None
    bandwidth_gbs: float | None
    bytes: int | None


@dataclass(frozen=True)
class Board:
    """One board: its device, AIE array, memory tiles, PLIO limits, PL and DDR."""

    name: str
    description: str
    device: str
    part: str
    aie: AieArray
    memory_tiles: MemoryTiles
    plio: Plio
    pl: ProgrammableLogic
    ddr: Ddr
    sources: dict[str, str] = field(repr=False, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def plio_in_limit(self) -> int:
        """PL->AIE streams available (all columns when the interface columns are unknown)."""
        cols = self.plio.interface_columns or self.aie.columns
        return cols * self.plio.pl_to_aie_per_column

    @property
    def plio_out_limit(self) -> int:
        cols = self.plio.interface_columns or self.aie.columns
        return cols * self.plio.aie_to_pl_per_column

    @property
    def use(self) -> str:
        """What codesign can do with the board: ``"compile"`` (compile and estimate) or
        ``"reference-only"`` (the perf model is not calibrated for it: its figures only serve
        the spatial baseline; compile refuses it)."""
        return str(self.extra.get("use") or "compile")

    def require_compile(self) -> None:
        """Raise :class:`BoardError` (one line) when the board is not for compiling."""
        if self.use != "compile":
            raise BoardError(
                f"board {self.name} is {self.use}: the perf model is not calibrated for it "
                f"(see `codesign boards {self.name}`); compile needs one of "
                f"{', '.join(compile_boards())}"
            )

    def source(self, path: str) -> str:
        """The source of one value, by dotted path (``"aie.clock_mhz"``)."""
        return self.sources.get(path, "unknown")


_TYPED = {
    "aie": AieArray,
    "memory_tiles": MemoryTiles,
    "plio": Plio,
    "pl": ProgrammableLogic,
    "ddr": Ddr,
}


def available() -> list[str]:
    """Names of the boards shipped with codesign, sorted."""
    return sorted(
        p.name.removesuffix(".json")
        for p in resources.files(__package__).iterdir()
        if p.name.endswith(".json")
    )


#: The board compile and estimate use when none is given (the VEK280, see README).
DEFAULT_BOARD = "vek280"


def compile_boards() -> list[str]:
    """Names of the boards compile accepts (not reference-only), sorted."""
    return [n for n in available() if load(n).use == "compile"]


@cache
def load(name: str) -> Board:
    """Load the board called ``name``; raise :class:`BoardError` naming the known boards."""
    names = available()
    if name not in names:
        raise BoardError(f"board must be one of {', '.join(names)}, not {name!r}")
    text = resources.files(__package__).joinpath(f"{name}.json").read_text()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise BoardError(f"board file {name}.json is not valid JSON: {e}") from None
    sources: dict[str, str] = {}
    values = _strip(raw, "", sources, name)
    kwargs: dict[str, Any] = {
        "name": raw["name"],
        "description": raw.get("description", ""),
        "device": values["device"],
        "part": values["part"],
        "sources": sources,
    }
    for section, cls in _TYPED.items():
        data = values.get(section)
        if not isinstance(data, dict):
            raise BoardError(f"board file {name}.json must have a {section!r} section")
        kwargs[section] = _build(cls, data, f"{name}.json:{section}")
    kwargs["extra"] = {
        k: v
        for k, v in values.items()
        if k not in _TYPED and k not in ("device", "part", "name", "description")
    }
    return Board(**kwargs)


def _strip(node: Any, path: str, sources: dict[str, str], board: str) -> Any:
    """Replace ``{"value", "source"}`` leaves by their value, collecting sources by path."""
    if isinstance(node, dict) and "value" in node and "source" in node:
        sources[path] = node["source"]
        return node["value"]
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            sub = f"{path}.{k}" if path else k
            if k in ("name", "description") and not path:
                out[k] = v
            elif isinstance(v, dict):
                out[k] = _strip(v, sub, sources, board)
            else:
                raise BoardError(
                    f"board file {board}.json: {sub} must be {{'value': ..., 'source': ...}}, not a bare {type(v).__name__}"
                )
        return out
    return node


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    missing = names - data.keys()
    if missing:
        raise BoardError(f"{where} is missing {', '.join(sorted(missing))}")
    kw = {k: data[k] for k in names}
    if cls is AieArray:
        kw["mmul_shapes"] = {k: tuple(v) for k, v in kw["mmul_shapes"].items()}
    if cls is Plio:
        kw["widths_bits"] = tuple(kw["widths_bits"])
    return cls(**kw)
