"""``python -m codesign.examples NAME PATH [--seed N]``: write one example model.

NAME is a builder of :mod:`codesign.examples.models` that needs only a path (ffn_block,
float_mlp, qdq_mlp, dynamic_mlp). Prints the path written. Built on click like ``codesign``:
a bad NAME or option is one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import click

from codesign.examples import models

BUILDERS = {
    "ffn_block": models.ffn_block,
    "float_mlp": models.float_mlp,
    "qdq_mlp": models.qdq_mlp,
    "dynamic_mlp": models.dynamic_mlp,
}


@click.command(
    "python -m codesign.examples", context_settings={"help_option_names": ["-h", "--help"]}
)
@click.argument("name", metavar="NAME", type=click.Choice(sorted(BUILDERS)))
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights.")
def examples(name: str, path: str, seed: int) -> None:
    """Write the example model NAME to PATH (ONNX) and print the path."""
    click.echo(BUILDERS[name](path, seed=seed))


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit code (0, or 2 for a usage error)."""
    try:
        examples.main(args=argv, prog_name="python -m codesign.examples", standalone_mode=False)
    except click.UsageError as e:
        click.echo(f"error: {e.format_message()}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
