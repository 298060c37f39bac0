"""Synthesis figures from Debian's yosys (synth_xilinx -family xcup), cached on disk."""

from __future__ import annotations

import json
import time

import pytest

from codesign.rtl import BlockSpec, write_blocks
from codesign.rtl.synth import PROXY_NOTE, SynthFigures, _figures, cache_dir, synthesize


def test_figures_from_stat_json() -> None:
    stat = {
        "design": {
            "num_cells_by_type": {
                "LUT2": 3,
                "LUT6": 5,
                "RAM64M": 2,
                "SRLC32E": 1,
                "FDRE": 7,
                "FDSE": 1,
                "DSP48E2": 4,
                "RAMB36E2": 1,
                "RAMB18E2": 3,
                "CARRY4": 2,
                "MUXF7": 1,
            }
        }
    }
    f = _figures(stat, "top", "Yosys 0.23", 1.0)
    assert (f.lut_logic, f.lut_memory, f.lut) == (8, 9, 17)
    assert (f.ff, f.dsp, f.bram36, f.carry, f.muxf) == (8, 4, 2.5, 2, 1)
    assert f.note == PROXY_NOTE and "no Versal family" in f.note
    assert SynthFigures.from_json(json.loads(json.dumps(f.to_json()))) == f


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CODESIGN_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path / "synth"
    monkeypatch.delenv("CODESIGN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "codesign" / "synth"


@pytest.mark.yosys
def test_synthesize_small_block_and_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CODESIGN_CACHE_DIR", str(tmp_path))
    spec = BlockSpec.of("sparse_expander", groups=2)
    f = synthesize(spec)
    assert f.module == spec.module_name and f.family == "xcup"
    # 2 groups x 4 lanes x 8 bits of output register, plus valid and last
    assert f.ff == 2 * 4 * 8 + 2
    assert f.lut > 0 and f.dsp == 0 and f.bram36 == 0
    assert len(list((tmp_path / "synth").glob("*.json"))) == 1
    t0 = time.monotonic()
    assert synthesize(spec) == f  # from the cache
    assert time.monotonic() - t0 < 1.0
    manifest = write_blocks(tmp_path / "rtl", [spec], synth=True)
    assert manifest["blocks"][0]["synth"] == f.to_json()
