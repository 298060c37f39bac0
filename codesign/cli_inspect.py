"""``codesign inspect MODEL``: where every node would run, and every blocker at once.

The answer is the compile's own decision (:func:`codesign.frontend.placement.place`, the same
lowering, Host partitioning and pass pipeline), run with ``keep_going`` so that a node the
frontend refuses is listed with its reason instead of stopping at the first. Nothing is planned
or written. Registered in :mod:`codesign.cli`; exit 0 when the model could be inspected (whatever
it found), 2 on a user error (no such file, not ONNX, a dynamic input without ``--shape``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from codesign.cli_errors import one_line, safe_text

#: the units in the order the summary lists them
UNITS = ("AIE", "PL", "Host", "refused", "view", "folded")


def inspect_data(
    model: Path, shapes: tuple[str, ...] = (), max_model_size: str = "2G"
) -> dict[str, Any]:
    """The inspection of ``model`` as data (what ``--json`` prints)."""
    from codesign.frontend import ShapeOverride, place_model
    from codesign.frontend.load import parse_size

    overrides = tuple(ShapeOverride.parse(s) for s in shapes)
    placed = place_model(model, overrides, parse_size(max_model_size), keep_going=True)
    nodes = [
        {"name": n.name, "op_type": n.op_type, "unit": n.unit, "reason": n.reason}
        for n in placed.nodes
    ]
    blockers: dict[str, list[dict[str, str]]] = {}
    for n in placed.blockers():
        blockers.setdefault(n.op_type, []).append(
            {"name": n.name, "unit": n.unit, "reason": n.reason}
        )
    counts = Counter(n.unit for n in placed.nodes)
    return {
        "model": str(model),
        "nodes": nodes,
        "summary": dict(sorted(counts.items())),
        "blockers": dict(sorted(blockers.items())),
        "error": placed.error,
        "host_partitions": sum(
            1 for op in (placed.kg.ops if placed.kg is not None else ()) if op.kind == "host"
        ),
    }


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    metavar="NAME=DIMS",
    help="Fix a dynamic input shape, e.g. --shape input=1x128 (repeatable).",
)
@click.option(
    "--max-model-size",
    default="2G",
    show_default=True,
    metavar="SIZE",
    help="Largest model file plus external data, e.g. 500M (at most 2G).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as JSON.")
def inspect(model: Path, shapes: tuple[str, ...], max_model_size: str, as_json: bool) -> None:
    """List where every node of MODEL would run (AIE / PL / Host / refused) and every blocker."""
    data = inspect_data(model, shapes, max_model_size)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    render(data, Console(width=80) if not Console().is_terminal else Console())


def render(data: dict[str, Any], console: Console) -> None:
    """The inspection as rich tables (model text escaped; readable at 80 columns)."""
    from codesign.report.terminal import make_table

    counts = data["summary"]
    parts = ", ".join(f"{counts[u]} {u}" for u in UNITS if counts.get(u)) or "no nodes"
    extra = sorted(set(counts) - set(UNITS))
    parts += "".join(f", {counts[u]} {safe_text(u)}" for u in extra)
    console.print(
        f"[bold]{safe_text(data['model'])}[/]: {len(data['nodes'])} nodes: {parts}"
        + (f"; {data['host_partitions']} Host partition(s)" if data["host_partitions"] else "")
    )
    table = make_table("where each node runs", ("#", "node", "op", "runs on"))
    for i, n in enumerate(data["nodes"]):
        table.add_row(str(i), safe_text(n["name"]), safe_text(n["op_type"]), n["unit"])
    console.print(table)
    if data["blockers"]:
        blockers = make_table(
            "blockers: nodes not on the accelerator, by op type",
            ("op", "runs on", "why", "nodes"),
        )
        for op, entries in data["blockers"].items():
            groups: dict[tuple[str, str], list[str]] = {}
            for e in entries:
                groups.setdefault((e["unit"], e["reason"]), []).append(e["name"])
            for (unit, reason), names in groups.items():
                blockers.add_row(
                    safe_text(op),
                    unit,
                    safe_text(reason),
                    "\n".join(safe_text(n) for n in names),
                )
        console.print(blockers)
    else:
        console.print("no blockers: every node runs on the accelerator (or is folded away)")
    if data["error"]:
        console.print(f"[red]stopped:[/] {safe_text(one_line(data['error']))}")
