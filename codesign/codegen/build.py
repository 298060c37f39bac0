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

from codesign import __version__, progress
from codesign.boards import Board
from codesign.boards import load as load_board
from codesign.codegen.datafiles import write_data
from codesign.codegen.rtl_blocks import synthesized_pl, write_emitted_files, write_rtl
from codesign.codegen.vitis import write_vitis
from codesign.errors import BuildError, OptionError
from codesign.frontend import MAX_MODEL_BYTES, ShapeOverride
from codesign.ir.plan import Block, Plan, to_json
from codesign.schedulers.tempus import DEFAULT_BLOCK, SOLVER_TIME_LIMIT

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

    The pipeline is :func:`codesign.compile` (load, passes, :func:`plan` and the estimate, in
    memory) and then :func:`write`. Raises :class:`BuildError` when ``out`` exists (without
    ``force``; checked before any work) or cannot be written, :class:`OptionError` for bad
    options, and whatever the frontend, passes and schedulers raise for the model; in every case
    nothing is left at ``out`` or beside it.
    """
    from codesign.api import compile as compile_in_memory

    _check_options(options)
    _check_target(Path(out), options.force)
    build = compile_in_memory(
        model,
        board=options.board,
        block=options.block,
        shapes=options.shapes,
        solver_time_limit=options.solver_time_limit,
        max_model_bytes=options.max_model_bytes,
        synth=options.synth,
        debug=debug,
    )
    build.save(out, force=options.force)
    return build.plan


def write(
    plan: Plan,
    out: str | os.PathLike[str],
    reference: bytes,
    options: CompileOptions,
    report: dict | None = None,
) -> None:
    """Write the build of ``plan`` at ``out`` atomically: its data, schedule.json, the model's
    self-contained copy ``reference``, every kind's emitted files, the report (``report`` if
    already made from the same plan and options, else made here) and the manifest.

    Raises :class:`BuildError` when ``out`` exists (without ``options.force``) or cannot be
    written, and :class:`~codesign.errors.FitError` when the report finds the design does not
    fit; nothing is left at ``out`` or beside it then.
    """
    out = Path(out)
    board = load_board(plan.board)
    _check_target(out, options.force)
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
            progress.stage("writing the build (data, RTL, synthesis, report)")
            hashes = write_data(tmp, plan)
            _write_build(tmp, plan, reference, board, options, hashes, report)
            _replace(tmp, out, options.force)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BuildError(f"{out}: cannot write the build: {e.strerror or e}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def check_options(options: CompileOptions) -> None:
    """OptionError for a solver time limit or model size bound that cannot work."""
    _check_options(options)


def check_output(out: str | os.PathLike[str], force: bool) -> None:
    """BuildError when ``out`` may not be written (it exists without ``force``, or is not a
    build that ``force`` may replace): the check a compile makes before any work."""
    _check_target(Path(out), force)


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
    report: dict | None = None,
) -> None:
    (root / "schedule.json").write_text(to_json(plan), encoding="utf-8")
    (root / "model.onnx").write_bytes(reference)
    write_rtl(root, plan, options.synth)
    write_emitted_files(root, plan)
    write_vitis(root, plan)
    write_report(root, plan, report, options_entry(options))
    _write_manifest(root, plan, board, options, hashlib.sha256(reference).hexdigest(), hashes)


def write_report(
    root: Path, plan: Plan, report: dict | None = None, options: dict | None = None
) -> dict:
    """Write ``report/report.json`` and ``report/report.html`` of a build; return the report.

    ``report`` is the report of ``plan`` already made (:meth:`codesign.api.Build.report`);
    without it the report is made from the plan and the build's RTL manifest. ``options``: the
    compile options to show (default: read back from the build's manifest). Raises
    :class:`~codesign.errors.FitError` when the modelled resources exceed the board.
    """
    from codesign.report.build import build_context
    from codesign.report.html import render_html
    from codesign.report.plan_report import plan_report

    if report is None:
        report = plan_report(plan, load_board(plan.board), synthesized_pl(root))
    if "build" not in report:  # a report made here, not by codesign.api.Build.report
        report = {**report, "build": build_context(root, plan, options, tool_versions())}
    out = root / "report"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "report.html").write_text(render_html(report))
    return report


def tool_versions() -> dict[str, str]:
    """Versions of the tools whose behaviour a build depends on (from the installed
    distributions' metadata: only the frontend imports onnx)."""
    from importlib.metadata import version

    return {
        "numpy": version("numpy"),
        "onnx": version("onnx"),
        "onnx_ir": version("onnx-ir"),
        "ortools": version("ortools"),
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
        "options": options_entry(options),
        "files": files,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (root / "manifest.json").write_text(text, encoding="utf-8")


def options_entry(options: CompileOptions) -> dict:
    """The compile options as the manifest and the report record them."""
    return {
        "board": options.board,
        "block": str(options.block),
        "shapes": {o.name: list(o.shape) for o in options.shapes},
        "solver_time_limit": options.solver_time_limit,
        "synth": options.synth,
    }


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
