"""BlockSpec, Verilog generation and the build's rtl/ directory."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from codesign.errors import BuildError, OptionError
from codesign.rtl import BLOCKS, BlockSpec, read_manifest, to_verilog, write_blocks


def test_spec_is_normalised_and_hashable() -> None:
    a = BlockSpec.of("requantizer")
    b = BlockSpec.of("requantizer", lanes=4, out_dtype="int8")
    assert a == b and hash(a) == hash(b)
    assert dict(a.params)["max_channels"] == 1024
    c = BlockSpec.of("requantizer", lanes=8, max_channels=64)
    assert c != a and c.module_name != a.module_name
    assert str(c) == "requantizer(lanes=8, max_channels=64)"
    assert BlockSpec.from_json(json.loads(json.dumps(c.to_json()))) == c


@pytest.mark.parametrize(
    ("block", "params", "message"),
    [
        ("nope", {}, "block must be one of broadcaster, mwq_decoder, requantizer, sparse_expander"),
        ("requantizer", {"lanez": 2}, "requantizer parameter must be one of"),
        ("requantizer", {"lanes": "4"}, "requantizer parameter lanes must be int, not str"),
        ("requantizer", {"max_channels": 6}, "max_channels must be a positive multiple of lanes=4"),
        ("requantizer", {"out_dtype": "int32"}, "out_dtype must be one of"),
        ("mwq_decoder", {"rounding": "nearest"}, "rounding must be one of floor"),
        ("sparse_expander", {"m": 6}, "m must be a power of two"),
        ("sparse_expander", {"n": 5}, "n must lie in [1, m=4]"),
        ("broadcaster", {"depth": 1}, "depth must lie in [2, 2**20]"),
    ],
)
def test_spec_errors_are_one_line_option_errors(block: str, params: dict, message: str) -> None:
    with pytest.raises(OptionError) as e:
        BlockSpec.of(block, **params)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_to_verilog_is_cached_and_names_the_module() -> None:
    spec = BlockSpec.of("sparse_expander", groups=2)
    text = to_verilog(spec)
    assert to_verilog(BlockSpec.of("sparse_expander", groups=2)) is text
    assert f"module {spec.module_name}(" in text
    for port in ("s_packed__data", "s_packed__valid", "s_packed__ready", "m_dense__last"):
        assert port in text


def test_write_blocks_writes_verilog_and_manifest(tmp_path) -> None:
    specs = [
        BlockSpec.of("sparse_expander", groups=2),
        BlockSpec.of("broadcaster", width=8, depth=16),
        BlockSpec.of("sparse_expander", groups=2),  # duplicate: written once
    ]
    out = tmp_path / "build" / "rtl"
    manifest = write_blocks(out, specs)
    assert [b["block"] for b in manifest["blocks"]] == ["sparse_expander", "broadcaster"]
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json"] + [b["file"] for b in manifest["blocks"]]
    )
    entry = manifest["blocks"][1]
    assert entry["params"] == {"width": 8, "outputs": 2, "depth": 16, "repeat_width": 16}
    assert entry["ports"]["m_out__1__data"] == {"direction": "out", "width": 8}
    assert entry["ports"]["s_tile__ready"] == {"direction": "out", "width": 1}
    assert entry["ports"]["repeats"] == {"direction": "in", "width": 16}
    assert entry["latency_cycles"] == 1 and entry["beats_per_cycle"] == 1
    assert read_manifest(tmp_path / "build") == tuple(dict.fromkeys(specs))
    assert read_manifest(out) == read_manifest(out / "manifest.json")
    # a second compile with fewer blocks removes the files of the first
    again = write_blocks(out, specs[:1])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", again["blocks"][0]["file"]]
    )


def test_write_blocks_leaves_nothing_on_bad_input(tmp_path) -> None:
    with pytest.raises(TypeError):
        write_blocks(tmp_path / "rtl", [BlockSpec.of("sparse_expander"), "requantizer"])
    assert not (tmp_path / "rtl").exists()


def test_read_manifest_errors(tmp_path) -> None:
    with pytest.raises(BuildError, match="must contain rtl/manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "rtl").mkdir()
    (tmp_path / "rtl" / "manifest.json").write_text('{"version": 99, "blocks": []}')
    with pytest.raises(BuildError, match="version 1"):
        read_manifest(tmp_path)


@pytest.mark.iverilog
@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_emitted_verilog_compiles_in_icarus(block: str, tmp_path) -> None:
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    spec = BlockSpec.of(block)
    src = tmp_path / f"{spec.module_name}.v"
    src.write_text(to_verilog(spec))
    run = subprocess.run(
        ["iverilog", "-g2012", "-o", str(tmp_path / "a.vvp"), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
