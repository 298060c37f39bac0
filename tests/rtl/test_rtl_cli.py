"""``codesign verify`` (the click command in codesign.rtl.cli)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from codesign.errors import BuildError, FidelityError, OptionError
from codesign.rtl import BlockSpec, write_blocks
from codesign.rtl.bench import runner as bench_runner
from codesign.rtl.cli import parse_block_arg, verify


def test_parse_block_arg() -> None:
    assert parse_block_arg("requantizer") == BlockSpec.of("requantizer")
    assert parse_block_arg("requantizer:lanes=8, out_dtype=int16,max_channels=0x40") == (
        BlockSpec.of("requantizer", lanes=8, out_dtype="int16", max_channels=64)
    )
    with pytest.raises(OptionError, match="block must be one of broadcaster"):
        parse_block_arg("requant")
    with pytest.raises(OptionError, match="lanes must be an integer, not 'x'"):
        parse_block_arg("requantizer:lanes=x")
    with pytest.raises(OptionError, match="must be key=value"):
        parse_block_arg("requantizer:lanes")


def invoke(args: list[str]):
    return CliRunner().invoke(verify, args, catch_exceptions=True)


def test_unknown_block_is_an_option_error() -> None:
    result = invoke(["nope"])
    assert isinstance(result.exception, OptionError)
    assert "sparse_expander" in str(result.exception)


def test_bad_simulator_is_a_usage_error() -> None:
    result = invoke(["--sim", "xsim", "requantizer"])
    assert result.exit_code == 2 and "xsim" in result.output


def test_missing_manifest_is_a_build_error(tmp_path) -> None:
    result = invoke(["--build", str(tmp_path)])
    assert isinstance(result.exception, BuildError)


@pytest.mark.iverilog
def test_verify_blocks_of_a_build(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CODESIGN_SIM", "icarus")
    specs = [BlockSpec.of("sparse_expander", groups=2), BlockSpec.of("broadcaster", width=8)]
    write_blocks(tmp_path / "rtl", specs)
    result = invoke(["--build", str(tmp_path), "-n", "300", "sparse_expander"])
    assert result.exit_code == 0, result.output
    assert "sparse_expander(groups=2)" in result.output
    assert "broadcaster" not in result.output.split("RTL verification")[1]
    assert "pass" in result.output and "1.000" in result.output


@pytest.mark.iverilog
def test_verify_reports_a_failing_bench(monkeypatch) -> None:
    spec = BlockSpec.of("sparse_expander", groups=1)
    fake = bench_runner.BenchResult(
        spec,
        "icarus",
        (bench_runner.TestOutcome("directed", False, message="beat 3 differs"),),
        0.0,
        0.0,
        bench_runner.Path("."),
    )
    monkeypatch.setattr("codesign.rtl.cli.run_bench", lambda *a, **k: fake)
    result = invoke(["--sim", "icarus", "sparse_expander:groups=1"])
    assert isinstance(result.exception, FidelityError)
    assert "beat 3 differs" in str(result.exception)
    assert "FAIL" in result.output
