"""``codesign prune MODEL --method magnitude|nm|neurons|heads --sparsity 0.5|2:4 -o OUT``: write
a pruned copy of an ONNX model for experiments (:func:`codesign.frontend.prune.prune_model`),
and print what each weight became. Registered in :mod:`codesign.cli`; a user error is one line
and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from codesign.cli_errors import safe_text
from codesign.errors import OptionError


@click.command("prune")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--method",
    required=True,
    type=click.Choice(["magnitude", "nm", "neurons", "heads"]),
    help="magnitude: unstructured per layer; nm: N:M along K; neurons: whole FFN neurons by "
    "L2 norm; heads: whole attention heads by the L2 norm of their output projection rows.",
)
@click.option(
    "--sparsity",
    required=True,
    help="Fraction of weights (neurons, heads) to zero, e.g. 0.5; N:M for --method nm, e.g. 2:4.",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The pruned ONNX model to write (self-contained).",
)
def prune(model: Path, method: str, sparsity: str, out: Path) -> None:
    """Write a pruned copy of MODEL to OUT for experiments."""
    from codesign.fileio import write_in
    from codesign.frontend.prune import prune_model

    if out.resolve() == model.resolve():
        raise OptionError(f"{out}: -o must not be the input model")
    data, pruned = prune_model(model, method, sparsity)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OptionError(f"{out}: the directory {parent} does not exist")
    write_in(parent, out.name, data, error=OptionError)
    table = Table(title=f"codesign prune --method {method} --sparsity {safe_text(sparsity)}")
    for col in ("weight", "K x N", "zeros before", "zeros after"):
        table.add_column(col, justify="left" if col == "weight" else "right", overflow="fold")
    for p in pruned:
        size = p.shape[0] * p.shape[1]
        table.add_row(
            safe_text(p.name),
            f"{p.shape[0]}x{p.shape[1]}",
            f"{p.zeros_before / size:.1%}",
            f"{p.zeros_after / size:.1%}",
        )
    Console(width=80).print(table)
    click.echo(f"wrote {out}")
