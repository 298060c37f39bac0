"""``codesign compile``: ONNX model -> build directory, written atomically and deterministically.

Contracts:

- **Atomic.** The build is assembled in a temporary sibling directory
  (``.<name>.tmp-<pid>-<random>``) and renamed into place only when every file is written. A
  failure (bad model, no fit, a bug, Ctrl-C or SIGTERM) removes the temporary directory; one
  left by a killed process (SIGKILL, power loss) is removed by the next compile to the same
  build directory once its process is gone.
- **No clobbering.** An existing build directory is replaced only with ``force``, and even then
  only if it is empty or a codesign build (it holds ``schedule.json`` or ``manifest.json``): a
  mistyped ``-o ~ --force`` cannot delete a home directory. A symlink in place of the build is
  replaced, never followed.
- **Deterministic.** The same model bytes and options give byte-identical files: the plan holds
  no wall time and no absolute path, file names derive from the graph, and ``manifest.json``
  records the sha256 of every file, the model's sha256, the options and the tool versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from codesign import __version__
from codesign.boards import Board
from codesign.boards import load as load_board
from codesign.codegen.datafiles import DataWriter
from codesign.codegen.rtl_blocks import synthesized_pl, write_rtl
from codesign.errors import BuildError, OptionError
from codesign.frontend import (
    MAX_MODEL_BYTES,
    ShapeOverride,
    import_model,
    read_model_bytes,
    reference_copy,
)
from codesign.ir.plan import Block, Plan, to_json
from codesign.passes.pipeline import to_hardware
from codesign.schedulers.planner import plan_graph
from codesign.schedulers.tempus import DEFAULT_BLOCK, SOLVER_TIME_LIMIT, check_block

MANIFEST_SCHEMA = "codesign.manifest/1"


@dataclass(frozen=True)
class CompileOptions:
    """Options of one compile; the same options and model give a byte-identical build.

    ``solver_time_limit`` is CP-SAT's deterministic time limit per GEMM tile in seconds (0:
    exhaustive search only, reported as a fallback); ``max_model_bytes`` bounds the model file
    plus its external data.
    """

    board: str = "vek280"
    block: Block = DEFAULT_BLOCK
    shapes: tuple[ShapeOverride, ...] = ()
    force: bool = False
    solver_time_limit: float = SOLVER_TIME_LIMIT
    max_model_bytes: int = MAX_MODEL_BYTES
    #: run yosys on the RTL blocks (cached by parameters) for the report's PL figures
    synth: bool = True


def compile_model(
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: CompileOptions,
    *,
    debug: bool = False,
) -> Plan:
    """Compile ``model`` into the build directory ``out``; return the Plan written there.

    ``debug`` validates the KernelGraph after every pass (``codesign --debug compile``).

    Raises :class:`BuildError` when ``out`` exists (without ``force``) or cannot be written,
    :class:`OptionError` for bad options, and whatever the frontend, passes and schedulers
    raise for the model; in every case nothing is left at ``out`` or beside it.
    """
    _check_options(options)
    board = load_board(options.board)
    check_block(board, options.block)
    model, out = Path(model), Path(out)
    _check_target(out, options.force)
    data = read_model_bytes(model, options.max_model_bytes)
    kg = import_model(model, options.shapes, options.max_model_bytes, data)
    to_hardware(kg, source=str(model), debug=debug)
    reference = reference_copy(model, data, options.max_model_bytes)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
    except OSError as e:
        raise BuildError(f"{out}: cannot create the build directory: {e.strerror}") from None
    with _signals_as_interrupts():
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        except OSError as e:
            raise BuildError(f"{out}: cannot create the build directory: {e.strerror}") from None
        try:
            tmp.chmod(0o755)
            writer = DataWriter(tmp)
            plan = plan_graph(
                kg,
                board,
                options.block,
                writer,
                model=model.name,
                solver_time_limit=options.solver_time_limit,
            )
            _write_build(tmp, plan, reference, board, options, writer.hashes)
            _replace(tmp, out, options.force)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BuildError(f"{out}: cannot write the build: {e.strerror or e}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return plan


def _check_options(options: CompileOptions) -> None:
    t = options.solver_time_limit
    if not (isinstance(t, int | float) and math.isfinite(t) and t >= 0):
        raise OptionError(f"--solver-time-limit must be a number of seconds >= 0, not {t!r}")
    if options.max_model_bytes < 1:
        raise OptionError(
            f"--max-model-size must be a positive size, not {options.max_model_bytes}"
        )


def is_build_dir(path: Path) -> bool:
    """Whether ``path`` is a directory that codesign may replace: empty, or a codesign build."""
    if not path.is_dir():
        return False
    if (path / "schedule.json").is_file():
        return True
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and manifest.get("schema") == MANIFEST_SCHEMA:
            return True
    except (OSError, ValueError):
        pass
    try:
        return not any(path.iterdir())
    except OSError:
        return False


def _check_target(out: Path, force: bool) -> None:
    if out.is_symlink() and not out.exists():
        if not force:
            raise BuildError(
                f"{out}: a (dangling) symlink is in the way; pass --force to replace it"
            )
        return
    if not out.exists():
        return
    if not force:
        raise BuildError(f"{out}: build directory already exists; pass --force to replace it")
    if not out.is_dir():
        raise BuildError(f"{out}: must be a build directory, not a file; not replacing it")
    if not out.is_symlink() and not is_build_dir(out):
        raise BuildError(
            f"{out}: is not a codesign build (no schedule.json or manifest.json) and not "
            "empty; --force replaces only builds, so remove it yourself or choose another -o"
        )


_TEMP = re.compile(r"\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[^/]+")


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove temporary and old builds beside ``out`` left by processes that no longer run."""
    removed = []
    for p in out.parent.glob(f".{glob_escape(out.name)}.*-*-*"):
        m = _TEMP.fullmatch(p.name)
        if not m or m["name"] != out.name or _alive(int(m["pid"])):
            continue
        if p.is_symlink() or not p.is_dir():
            p.unlink(missing_ok=True)
        else:
            shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt while the build is written, so the
    temporary directory is removed (the main thread only; elsewhere signals stay as they are)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _write_build(
    root: Path,
    plan: Plan,
    reference: bytes,
    board: Board,
    options: CompileOptions,
    hashes: dict[str, str],
) -> None:
    (root / "schedule.json").write_text(to_json(plan), encoding="utf-8")
    (root / "model.onnx").write_bytes(reference)
    write_rtl(root, plan, options.synth)
    write_report(root, plan)
    _write_manifest(root, plan, board, options, hashlib.sha256(reference).hexdigest(), hashes)


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


def tool_versions() -> dict[str, str]:
    """Versions of the tools whose behaviour a build depends on."""
    import numpy
    import onnx
    import onnx_ir
    import ortools

    return {
        "numpy": numpy.__version__,
        "onnx": onnx.__version__,
        "onnx_ir": onnx_ir.__version__,
        "ortools": ortools.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


def _write_manifest(
    root: Path,
    plan: Plan,
    board: Board,
    options: CompileOptions,
    model_sha256: str,
    known: dict[str, str],
) -> None:
    """manifest.json: the sha256 of every file of the build, the options and tool versions.

    ``known`` holds hashes already computed while writing (the weight files)."""
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            files[rel] = known.get(rel) or hashlib.sha256(p.read_bytes()).hexdigest()
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "codesign": __version__,
        "tools": tool_versions(),
        "board": board.name,
        "block": str(plan.block),
        "model": {"name": plan.model, "sha256": model_sha256},
        "options": {
            "board": options.board,
            "block": str(options.block),
            "shapes": {o.name: list(o.shape) for o in options.shapes},
            "solver_time_limit": options.solver_time_limit,
            "synth": options.synth,
        },
        "files": files,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (root / "manifest.json").write_text(text, encoding="utf-8")


def _replace(tmp: Path, out: Path, force: bool) -> None:
    """Move the finished build into place; an old build is removed only after that succeeds."""
    if not (out.exists() or out.is_symlink()):
        os.replace(tmp, out)
        return
    if not force:  # another process wrote it since _check_target
        raise BuildError(f"{out}: build directory already exists; pass --force to replace it")
    suffix = tmp.name.rsplit("-", 1)[-1]
    old = out.with_name(f".{out.name}.old-{os.getpid()}-{suffix}")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    if old.is_symlink():
        old.unlink()
    else:
        shutil.rmtree(old, ignore_errors=True)
