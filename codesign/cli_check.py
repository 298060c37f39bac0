"""``codesign check BUILD``: compile the build's generated code with g++ against codesign's x86
headers, run it on the build's packed data and golden inputs, and compare every layer's output
bit for bit with the simulator (:func:`codesign.codegen.check.check_build`).

Registered in :mod:`codesign.cli`; exit 0 when every layer compiled and matched (a part that
cannot run on this machine is shown skipped, with what it needs), 3 when one did not
(FidelityError), 2 on a user error (not a build, g++ missing).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from codesign.cli_errors import one_line, safe_text
from codesign.errors import BuildError, FidelityError


def _yes(flag: bool, skipped: bool = False) -> str:
    return "skipped" if skipped else "yes" if flag else "NO"


@click.command("check")
@click.argument("build", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check(build: Path, as_json: bool) -> None:
    """Compile and run BUILD's generated AIE (and PL) code on x86; compare with the simulator."""
    from codesign.api import load_build
    from codesign.codegen.check import check_build

    if not build.is_dir():
        raise BuildError(f"{build}: must be a build directory (codesign compile -o {build})")
    results = check_build(load_build(build))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        table = Table(title=f"codesign check {build}")
        for col in ("layer", "part", "compiled", "matched", "max diff"):
            table.add_column(col, justify="left" if col in ("layer", "part") else "right")
        for r in results:
            diff = "-" if r.max_diff is None else f"{r.max_diff:g}"
            # layer names come from the model: data, never markup
            table.add_row(
                safe_text(r.layer),
                r.part,
                _yes(r.compiled, r.skipped),
                _yes(r.matched, r.skipped),
                diff,
            )
        Console(width=80).print(table)
        for r in results:
            if r.detail:
                click.echo(f"{r.part} {one_line(r.layer)}: {r.detail}", err=r.failed)
    bad = [r for r in results if r.failed]
    if bad:
        raise FidelityError(
            f"{build}: {len(bad)} of {len(results)} checks failed "
            f"(first: {bad[0].part} layer {bad[0].layer!r}: {bad[0].detail or 'mismatch'})"
        )
