"""``codesign compile``: ONNX model -> build directory, written atomically and deterministically.

Contracts:

- **Atomic.** The build is assembled in a temporary sibling directory
  (``.<name>.tmp-<pid>-<random>``) and renamed into place only when every file is written. A
  failure (bad model, no fit, a bug, Ctrl-C or SIGTERM) removes the temporary directory; one
  left by a killed process (SIGKILL, power loss) is removed by the next compile to the same
  build directory once its process is gone.
- **No clobbering.** An existing build directory is replaced only with ``force``, and even then
  only if it is empty or a codesign build whose ``manifest.json`` verifies (every file listed
  with its sha256, no file unlisted): a mistyped ``-o ~ --force`` cannot delete a home
  directory, nor a folder holding a stray ``schedule.json``. A symlink in place of the build is
  replaced, never followed. The old build is parked as ``.<name>.old-<pid>-<random>`` between
  two renames; if the process dies there, the next compile to the same directory puts it back.
- **Contained.** Every file is written through :func:`codesign.fileio.write_in` (fresh
  ``O_EXCL | O_NOFOLLOW`` name, then a rename), so no write follows a symlink out of the build;
  writers never create the build's parents, the manifest is checked against the files before
  the final rename, and parent folders a failed compile created are removed.
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
from codesign.fileio import check_tree, make_dir_in, read_in, write_in
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
    #: refuse a model with Host partitions (``--strict``); a build never has one then, so the
    #: option is not recorded in the manifest
    strict: bool = False


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
    out = Path(out)
    if out.parent.is_dir():  # first: an old build a killed --force left is put back
        remove_stale_temporaries(out)
    _check_target(out, options.force)
    # Ctrl-C, SIGTERM and SIGHUP stay interrupts through CP-SAT's solves and the write
    with signals_as_interrupts():
        build = compile_in_memory(
            model,
            board=options.board,
            block=options.block,
            shapes=options.shapes,
            solver_time_limit=options.solver_time_limit,
            max_model_bytes=options.max_model_bytes,
            synth=options.synth,
            debug=debug,
            strict=options.strict,
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

    Every file goes through :func:`codesign.fileio.write_in` into a temporary sibling folder;
    the manifest is checked against the files before the final rename, and parent folders of
    ``out`` created here are removed again on failure.

    Raises :class:`BuildError` when ``out`` exists (without ``options.force``) or cannot be
    written, and :class:`~codesign.errors.FitError` when the report finds the design does not
    fit; nothing is left at ``out`` or beside it then.
    """
    out = Path(out)
    board = load_board(plan.board)
    if out.parent.is_dir():  # first: an old build a killed --force left is put back
        remove_stale_temporaries(out)
    _check_target(out, options.force)
    created = _missing_parents(out)
    with signals_as_interrupts():
        try:
            _make_parents(out, created)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        except OSError as e:
            _remove_parents(created)
            raise BuildError(f"{out}: cannot create the build directory: {e.strerror}") from None
        except BaseException:
            _remove_parents(created)
            raise
        try:
            tmp.chmod(0o755)
            progress.stage("writing the build (data, RTL, synthesis, report)")
            hashes = write_data(tmp, plan)
            _write_build(tmp, plan, reference, board, options, hashes, report)
            problem = manifest_problem(tmp, required=("schedule.json", "model.onnx", *hashes))
            if problem:
                raise BuildError(f"{out}: the finished build does not verify: {problem}")
            _replace(tmp, out, options.force)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            _remove_parents(created)
            raise BuildError(f"{out}: cannot write the build: {e.strerror or e}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            _remove_parents(created)
            raise


def check_options(options: CompileOptions) -> None:
    """OptionError for a solver time limit or model size bound that cannot work."""
    _check_options(options)


def check_output(out: str | os.PathLike[str], force: bool) -> None:
    """BuildError when ``out`` may not be written (it exists without ``force``, or is not a
    build that ``force`` may replace): the check a compile makes before any work. An old build
    that a killed ``--force`` left parked beside ``out`` is put back first."""
    out = Path(out)
    if out.parent.is_dir():
        remove_stale_temporaries(out)
    _check_target(out, force)


def _missing_parents(out: Path) -> list[Path]:
    """The parent folders of ``out`` that do not exist yet, outermost first."""
    missing = []
    p = out.absolute().parent
    while not (p.exists() or p.is_symlink()) and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing[::-1]


def _make_parents(out: Path, created: list[Path]) -> None:
    for p in created:
        p.mkdir(exist_ok=True)
    remove_stale_temporaries(out)


def _remove_parents(created: list[Path]) -> None:
    """Remove the parent folders this compile created (innermost first), if still empty."""
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            break


def _check_options(options: CompileOptions) -> None:
    t = options.solver_time_limit
    if not (isinstance(t, int | float) and math.isfinite(t) and t >= 0):
        raise OptionError(f"--solver-time-limit must be a number of seconds >= 0, not {t!r}")
    if options.max_model_bytes < 1:
        raise OptionError(
            f"--max-model-size must be a positive size, not {options.max_model_bytes}"
        )


def is_build_dir(path: Path) -> bool:
    """Whether ``path`` is a directory that codesign may replace: empty, or a codesign build
    whose manifest verifies (see :func:`manifest_problem`)."""
    return path.is_dir() and not path.is_symlink() and _replace_problem(path) is None


def _replace_problem(path: Path) -> str | None:
    try:
        if not any(path.iterdir()):
            return None
    except OSError as e:
        return f"cannot be listed ({e.strerror})"
    return manifest_problem(path)


def manifest_problem(root: Path, required: tuple[str, ...] = ()) -> str | None:
    """Why ``root`` is not a build that its ``manifest.json`` describes exactly, or None.

    It verifies when the manifest (read without following symlinks) has codesign's schema, every
    file it lists exists as a regular file with that sha256, every other file below ``root``
    (``manifest.json`` aside) is listed, nothing is a symlink or special file, and every path in
    ``required`` is listed.
    """
    try:
        manifest = json.loads(read_in(root, "manifest.json", max_bytes=64 << 20))
    except BuildError as e:
        return str(e)
    except (ValueError, UnicodeDecodeError):
        return "manifest.json is not JSON"
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        return f"manifest.json does not have the schema {MANIFEST_SCHEMA!r}"
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return "manifest.json has no 'files' table"
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink() or not (p.is_dir() or p.is_file()):
                return f"{rel} is a symlink or special file"
            if p.is_dir() or rel == "manifest.json":
                continue
            if rel not in listed:
                return f"{rel} is not listed in manifest.json"
            seen.add(rel)
    for rel, digest in listed.items():
        if rel not in seen:
            return f"{rel} is listed in manifest.json but missing"
        h = hashlib.sha256()
        try:
            with open(root / rel, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as e:
            return f"{rel} cannot be read ({e.strerror})"
        if h.hexdigest() != digest:
            return f"{rel} does not match its sha256 in manifest.json"
    for rel in required:
        if rel not in listed:
            return f"{rel} is missing"
    return None


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
    problem = None if out.is_symlink() else _replace_problem(out)
    if problem:
        raise BuildError(
            f"{out}: is not a codesign build that verifies ({problem}); --force replaces only "
            "empty folders and intact builds, so remove it yourself or choose another -o"
        )


_TEMP = re.compile(r"\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[^/]+")


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove temporary and old builds beside ``out`` left by processes that no longer run.

    An old build (``.old-*``) left with nothing at ``out`` means a ``--force`` replacement died
    between its two renames: it is renamed back to ``out`` instead of being removed."""
    removed = []
    for p in sorted(out.parent.glob(f".{glob_escape(out.name)}.*-*-*")):
        m = _TEMP.fullmatch(p.name)
        if not m or m["name"] != out.name or _alive(int(m["pid"])):
            continue
        if ".old-" in p.name and not (out.exists() or out.is_symlink()):
            os.replace(p, out)
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
def signals_as_interrupts() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt while the build is written, so the
    temporary directory is removed (the main thread only; elsewhere signals stay as they are)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {}
    # SIGINT too: a library (CP-SAT) may have left it at SIG_DFL, which kills without cleanup
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
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
    write_in(root, "schedule.json", to_json(plan))
    write_in(root, "model.onnx", reference)
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
    compile options to show (default: read back from the build's manifest).

    Raises :class:`~codesign.errors.FitError` when the modelled resources exceed the board, and
    :class:`BuildError` for a build holding a symlink or special file, a damaged
    ``rtl/manifest.json``, or a build that cannot be written. The files are written without
    following symlinks (:func:`codesign.fileio.write_in`); in a finished build, the manifest's
    hashes of the two files are updated so the build still verifies.
    """
    from codesign.report.build import build_context
    from codesign.report.html import render_html
    from codesign.report.plan_report import plan_report
    from codesign.sim.build_files import read_json

    check_tree(root)
    if report is None:
        try:
            pl = synthesized_pl(root)
        except (ValueError, TypeError, AttributeError, KeyError, OSError) as e:
            raise BuildError(
                f"{root / 'rtl' / 'manifest.json'}: must be the RTL manifest codesign wrote: "
                f"{' '.join(str(e).split())[:200]}"
            ) from None
        report = plan_report(plan, load_board(plan.board), pl)
    if "build" not in report:  # a report made here, not by codesign.api.Build.report
        report = {
            **report,
            "build": build_context(root, plan, options, tool_versions(), read_json=read_json),
        }
    make_dir_in(root, "report")
    hashes = {
        "report/report.json": write_in(
            root, "report/report.json", json.dumps(report, indent=2, sort_keys=True) + "\n"
        ),
        "report/report.html": write_in(root, "report/report.html", render_html(report)),
    }
    record_files(root, hashes)
    return report


def record_files(root: Path, hashes: dict[str, str]) -> None:
    """Record the sha256s of files written into a finished build (a rewritten report, the
    simulation record) in its ``manifest.json`` (if it has one), so the build still verifies."""
    try:
        manifest = json.loads(read_in(root, "manifest.json", max_bytes=64 << 20))
    except BuildError:
        return
    except (ValueError, UnicodeDecodeError):
        raise BuildError(f"{root / 'manifest.json'}: must be JSON") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or all(files.get(k) == v for k, v in hashes.items()):
        return
    files.update(hashes)
    write_in(root, "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


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
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(root).as_posix()
            files[rel] = known.get(rel) or hashlib.sha256(read_in(root, rel)).hexdigest()
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
    write_in(root, "manifest.json", text)


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
