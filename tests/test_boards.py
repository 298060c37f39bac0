"""Board files: every value carries a source; unknowns are null, not invented."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from codesign import boards
from codesign.errors import BoardError


def _leaves(node, path=""):
    if isinstance(node, dict) and "value" in node:
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            if k not in ("name", "description"):
                yield from _leaves(v, f"{path}.{k}" if path else k)


@pytest.mark.parametrize("name", ["vek280", "ve2302", "vck190"])
def test_every_value_has_a_source(name: str) -> None:
    raw = json.loads(resources.files("codesign.boards").joinpath(f"{name}.json").read_text())
    leaves = list(_leaves(raw))
    assert leaves
    for path, leaf in leaves:
        assert set(leaf) == {"value", "source"}, path
        assert leaf["source"].strip(), path
    b = boards.load(name)
    assert b.aie.tiles > 0 and b.source("aie.clock_mhz") != "unknown"


def test_known_facts() -> None:
    v = boards.load("vek280")
    assert (v.aie.columns, v.aie.rows, v.aie.tiles, v.memory_tiles.count) == (38, 8, 304, 76)
    assert v.aie.mmul_shapes["int8"] == (4, 8, 8) and v.aie.macs_per_cycle["int8"] == 256
    assert v.pl.lut is None  # not gathered: null, not invented
    s = boards.load("ve2302")
    assert (s.aie.tiles, s.pl.lut, s.pl.dsp) == (34, 150272, 464)
    assert boards.load("vck190").aie.data_memory_bytes == 32 * 1024


def test_unknown_board() -> None:
    with pytest.raises(BoardError, match="board must be one of vck190, ve2302, vek280, not 'x'"):
        boards.load("x")
