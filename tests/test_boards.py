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
    assert v.pl.lut is None  # not found in a public source reachable here: null, not invented
    s = boards.load("ve2302")
    assert (s.aie.tiles, s.pl.lut, s.pl.dsp) == (34, 150272, 464)
    assert boards.load("vck190").aie.data_memory_bytes == 32 * 1024


def test_unknown_board() -> None:
    with pytest.raises(BoardError, match="board must be one of vck190, ve2302, vek280, not 'x'"):
        boards.load("x")


@pytest.mark.parametrize("name", ["vek280", "ve2302", "vck190"])
def test_sources_cite_public_documents_not_the_private_notes(name: str) -> None:
    """REFERENCES.md is not in the repository: a source names the public document itself."""
    for path, source in boards.load(name).sources.items():
        assert "REFERENCES.md s1" not in source and "REFERENCES.md s2" not in source, path


def test_vck190_is_reference_only_with_a_sourced_ddr_bandwidth() -> None:
    b = boards.load("vck190")
    assert b.ddr.bandwidth_gbs == 25.6 and "XilinxBoardStore" in b.source("ddr.bandwidth_gbs")
    assert b.pl.dsp == 1968 and "AM004" in b.source("pl.dsp")
    assert b.use == "reference-only"
    assert boards.compile_boards() == ["ve2302", "vek280"]
    with pytest.raises(BoardError, match="board vck190 is reference-only"):
        b.require_compile()
    boards.load("vek280").require_compile()  # the default board compiles


def test_unknown_vek280_figures_say_fit_is_unchecked() -> None:
    v = boards.load("vek280")
    for field in ("lut", "ff", "bram36", "uram", "dsp"):
        assert getattr(v.pl, field) is None
        assert "fit is unchecked" in v.source(f"pl.{field}")
    assert v.extra["power"]["static_w"] is None and "not found" in v.source("power.static_w")


def test_compile_and_estimate_default_to_the_same_board() -> None:
    from codesign.cli import compile_cmd
    from codesign.cli_estimate import estimate

    def default(cmd) -> str:
        return next(p.default for p in cmd.params if p.name in ("board", "board_name"))

    assert default(compile_cmd) == default(estimate) == boards.DEFAULT_BOARD == "vek280"
