"""``codesign compile``: ONNX model -> build directory, written atomically.

The build is assembled in a temporary sibling directory and renamed into place only when every
file is written, so a failure (bad model, no fit, a bug) leaves no half-written build behind. An
existing build directory is replaced only with ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codesign import __version__
from codesign.boards import Board
from codesign.boards import load as load_board
from codesign.codegen.datafiles import DataWriter
from codesign.codegen.rtl_blocks import synthesized_pl, write_rtl
from codesign.errors import BuildError
from codesign.frontend import ShapeOverride, import_model
from codesign.ir.plan import Block, Plan, to_json
from codesign.passes.pipeline import to_hardware
from codesign.schedulers.planner import plan_graph
from codesign.schedulers.tempus import DEFAULT_BLOCK, check_block


@dataclass(frozen=True)
class CompileOptions:
    """Options of one compile; the same options and model give a byte-identical build."""

    board: str = "vek280"
    block: Block = DEFAULT_BLOCK
    shapes: tuple[ShapeOverride, ...] = ()
    force: bool = False
    #: run yosys on the RTL blocks (cached by parameters) for the report's PL figures
    synth: bool = True


def compile_model(
    model: str | os.PathLike[str], out: str | os.PathLike[str], options: CompileOptions
) -> Plan:
    """Compile ``model`` into the build directory ``out``; return the Plan written there."""
    board = load_board(options.board)
    check_block(board, options.block)
    out = Path(out)
    if out.exists() and not options.force:
        raise BuildError(f"{out}: build directory already exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a directory")
    kg = import_model(model, options.shapes)
    to_hardware(kg, source=str(model))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        writer = DataWriter(tmp)
        plan = plan_graph(kg, board, options.block, writer, model=Path(model).name)
        _write_build(tmp, plan, Path(model), board, writer.hashes, options.synth)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return plan


def _write_build(
    root: Path, plan: Plan, model: Path, board: Board, hashes: dict[str, str], synth: bool
) -> None:
    (root / "schedule.json").write_text(to_json(plan))
    shutil.copyfile(model, root / "model.onnx")
    write_rtl(root, plan, synth)
    write_report(root, plan)
    _write_manifest(root, plan, board, hashes)


def write_report(root: Path, plan: Plan) -> dict:
    """Write ``report/report.json`` and ``report/report.html`` of a build; return the report.

    Raises :class:`~codesign.errors.FitError` when the modelled resources exceed the board.
    """
    from codesign.report.html import render_html
    from codesign.report.plan_report import plan_report

    report = plan_report(plan, load_board(plan.board), synthesized_pl(root))
    out = root / "report"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "report.html").write_text(render_html(report))
    return report


def _write_manifest(root: Path, plan: Plan, board: Board, known: dict[str, str]) -> None:
    """manifest.json: the sha256 of every file of the build and the tool versions.

    ``known`` holds hashes already computed while writing (the weight files)."""
    import numpy
    import onnx
    import ortools

    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            files[rel] = known.get(rel) or hashlib.sha256(p.read_bytes()).hexdigest()
    manifest = {
        "schema": "codesign.manifest/1",
        "codesign": __version__,
        "tools": {
            "numpy": numpy.__version__,
            "onnx": onnx.__version__,
            "ortools": ortools.__version__,
        },
        "board": board.name,
        "block": str(plan.block),
        "files": files,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished build into place; an old build is removed only after that succeeds."""
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
