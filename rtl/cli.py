"""``codesign verify``: run the cocotb benches of RTL blocks and print a summary table.

The command object :data:`verify` is registered in the main CLI with ``main.add_command(verify)``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from codesign.errors import CodesignError, FidelityError, OptionError
from codesign.rtl.bench.runner import (
    DEFAULT_TRANSACTIONS,
    SIMULATORS,
    BenchResult,
    default_simulator,
    run_bench,
    simulator_missing,
)
from codesign.rtl.spec import BLOCKS, BlockSpec, block_info
from codesign.rtl.verilog import read_manifest

__all__ = ["parse_block_arg", "verify"]


def _convert(block: str, key: str, text: str, default: object) -> object:
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise OptionError(f"{block} parameter {key} must be true or false, not {text!r}")
    if isinstance(default, int):
        try:
            return int(text, 0)
        except ValueError:
            raise OptionError(f"{block} parameter {key} must be an integer, not {text!r}") from None
    return text


def parse_block_arg(arg: str) -> BlockSpec:
    """``NAME`` or ``NAME:key=value,key=value`` (e.g. ``requantizer:lanes=8,out_dtype=int16``)
    as a :class:`BlockSpec`; OptionError for an unknown block or parameter."""
    name, _, rest = arg.partition(":")
    info = block_info(name.strip())
    defaults = {f.name: f.default for f in dataclasses.fields(info.params_type)}
    params: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            raise OptionError(f"block parameter must be key=value, not {item!r}")
        if key not in defaults:
            raise OptionError(
                f"{info.name} parameter must be one of {', '.join(sorted(defaults))}, not {key!r}"
            )
        params[key] = _convert(info.name, key, value.strip(), defaults[key])
    return BlockSpec.of(info.name, **params)  # type: ignore[arg-type]


def _rate(r: BenchResult) -> str:
    rate = r.beats_per_cycle
    return "-" if rate is None else f"{rate:.3f}"


@click.command("verify")
@click.argument("blocks", nargs=-1, metavar="[BLOCK[:key=value,...]]...")
@click.option(
    "--sim",
    type=click.Choice(SIMULATORS),
    default=None,
    help="Simulator (default: $CODESIGN_SIM, else icarus).",
)
@click.option(
    "--build",
    "build_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Verify the blocks listed in DIR/rtl/manifest.json (written by codesign compile).",
)
@click.option(
    "-n",
    "--transactions",
    type=click.IntRange(min=1),
    default=DEFAULT_TRANSACTIONS,
    show_default=True,
    help="Random input transactions per block (directed cases come on top).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the benches.")
@click.option(
    "--synth/--no-synth",
    default=False,
    help="Also show yosys synthesis figures (LUT/FF/DSP/BRAM; xcup proxy, cached).",
)
@click.option("--wide", is_flag=True, help="Also show the simulator and the time per block.")
def verify(
    blocks: tuple[str, ...],
    sim: str | None,
    build_dir: Path | None,
    transactions: int,
    seed: int,
    synth: bool,
    wide: bool,
) -> None:
    """Run the cocotb benches of RTL blocks against codesign.sim.numerics.

    With no BLOCK and no --build, verifies every block with its default parameters. Blocks:
    requantizer, broadcaster, mwq_decoder, sparse_expander.
    """
    specs = _specs(blocks, build_dir)
    sim = sim or default_simulator()
    missing = simulator_missing(sim)
    if missing:
        raise OptionError(f"--sim {sim}: {missing}")
    console = Console()
    results: list[tuple[BenchResult, float]] = []
    figures: dict[BlockSpec, object] = {}
    for spec in specs:
        t0 = time.monotonic()
        with console.status(f"[bold]{spec}[/] on {sim}: building and simulating ..."):
            result = run_bench(spec, sim=sim, transactions=transactions, seed=seed)
        results.append((result, time.monotonic() - t0))
        if synth:
            from codesign.rtl.synth import SynthesisError, synthesize

            with console.status(f"[bold]{spec}[/]: yosys synth_xilinx ..."):
                try:
                    figures[spec] = synthesize(spec)
                except SynthesisError as e:
                    figures[spec] = str(e)
    console.print(_table(results, figures, sim, synth, wide))
    if synth:
        from codesign.rtl.synth import PROXY_NOTE

        console.print(f"[dim]Synthesis: {PROXY_NOTE}.[/]")
    failed = [r for r, _ in results if not r.passed]
    if failed:
        first = failed[0]
        raise FidelityError(
            f"RTL verification failed for {', '.join(str(r.spec) for r in failed)} on {sim}: "
            f"{first.summary()}"
        )


def _specs(blocks: tuple[str, ...], build_dir: Path | None) -> list[BlockSpec]:
    if build_dir is not None:
        listed = list(read_manifest(build_dir))
        if blocks:
            wanted = {parse_block_arg(b).block for b in blocks}
            listed = [s for s in listed if s.block in wanted]
            if not listed:
                raise OptionError(
                    f"blocks {', '.join(sorted(wanted))} must be used by the build in "
                    f"{build_dir}; it uses none of them"
                )
        if not listed:
            raise CodesignError(f"the build in {build_dir} uses no RTL block; nothing to verify")
        return listed
    if not blocks:
        return [BlockSpec.of(name) for name in BLOCKS]
    specs: list[BlockSpec] = []
    for b in blocks:
        spec = parse_block_arg(b)
        if spec not in specs:
            specs.append(spec)
    return specs


def _table(
    results: list[tuple[BenchResult, float]],
    figures: dict,
    sim: str,
    synth: bool,
    wide: bool = False,
) -> Table:
    """The results table; readable at 80 columns (cells fold, never "…"); ``wide`` adds the
    simulator and time columns."""
    from codesign.report.terminal import make_table

    cols = ["block"] + (["simulator"] if wide else []) + ["transactions", "result", "beats/cycle"]
    cols += ["time s"] if wide else []
    cols += ["LUT", "FF", "DSP", "BRAM36"] if synth else []
    table = make_table(f"RTL verification ({sim})", cols)
    for r, seconds in results:
        status = "[green]pass[/]" if r.passed else f"[red]FAIL[/] {_why(r)}"
        cells = {
            "block": str(r.spec),
            "simulator": r.sim,
            "transactions": f"{r.transactions:,}",
            "result": status,
            "beats/cycle": _rate(r),
            "time s": f"{seconds:.1f}",
        }
        f = figures.get(r.spec)
        if synth and not (isinstance(f, str) or f is None):
            cells.update(LUT=str(f.lut), FF=str(f.ff), DSP=str(f.dsp), BRAM36=f"{f.bram36:g}")
        table.add_row(*(cells.get(c, "?") for c in cols))
    return table


def _why(r: BenchResult) -> str:
    if r.error:
        return r.error
    bad = [t for t in r.tests if not t.passed]
    return f"{bad[0].name}: {bad[0].message}" if bad else ""
