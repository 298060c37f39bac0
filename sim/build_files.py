"""Reading a build directory for the simulator and the report: its plan and its data files.

Only reads (the writer is :mod:`codesign.codegen`): :func:`load_plan` parses and checks
``schedule.json`` (:func:`codesign.sim.plan_check.check_plan`); :func:`read` returns one data file
as an array, checked against the sha256 and the size the plan gives. Every problem is a
:class:`~codesign.errors.BuildError` naming the file.

Builds come from strangers: every file is read through :func:`codesign.fileio.read_in` (no
symlink followed below the build, a regular file of the expected size checked on the opened
handle), and :func:`load_plan` refuses a build holding any symlink, FIFO, socket or device
(:func:`codesign.fileio.check_tree`) before reading ``schedule.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import BuildError
from codesign.fileio import check_tree, read_in
from codesign.ir.data import decode, itemsize, sha256
from codesign.ir.plan import DataFile, Plan, from_json

#: bound on a data file whose size its layout does not fix (packed layouts)
MAX_DATA_BYTES = 4 * 1024**3


def read_bytes(build: Path, f: DataFile, verify: bool = True) -> bytes:
    """The stored bytes of a DataFile, read no-follow with the size its plan gives (a row-major
    file); BuildError if missing, of the wrong size, not a regular file inside the build, or
    (``verify``) not matching its sha256."""
    path = Path(build) / f.path
    size = None
    if f.layout == "row-major":
        size = int(np.prod(f.shape, dtype=np.int64)) * itemsize(f.dtype)
    try:
        data = read_in(build, f.path, size=size, max_bytes=None if size else MAX_DATA_BYTES)
    except BuildError as e:
        raise BuildError(f"data file named in schedule.json: {e}") from None
    if verify and sha256(data) != f.sha256:
        raise BuildError(f"{path}: contents do not match the sha256 in schedule.json")
    return data


def read(build: Path, f: DataFile, verify: bool = True) -> np.ndarray:
    """Read a DataFile back (bf16 widened to float32); BuildError if missing or corrupt."""
    path = Path(build) / f.path
    data = read_bytes(build, f, verify)
    try:
        return decode(data, f)
    except ValueError as e:
        raise BuildError(f"{path}: {e}") from None


def read_json(build: Path, rel: str) -> Any:
    """The JSON in ``build/rel`` (read no-follow, a regular file of at most 64 MiB), or None
    when it is missing, unreadable or not JSON."""
    try:
        return json.loads(read_in(build, rel, max_bytes=64 << 20))
    except (BuildError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def load_plan(build: str | os.PathLike[str]) -> tuple[Path, Plan]:
    """Read and check ``build/schedule.json``; BuildError when the build is missing,
    unreadable or inconsistent."""
    from codesign.sim.plan_check import check_plan

    root = Path(build)
    path = root / "schedule.json"
    if not path.is_file():
        raise BuildError(
            f"{root}: not a codesign build (no schedule.json); run codesign compile first"
        )
    check_tree(root)  # a build holding a symlink, FIFO, socket or device is refused whole
    try:
        # no symlink, FIFO or device: read_in opens it no-follow and checks the handle
        plan = from_json(read_in(root, "schedule.json", max_bytes=1 << 30).decode("utf-8"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as e:
        raise BuildError(f"{path}: unreadable schedule: {' '.join(str(e).split())[:300]}") from None
    check_plan(plan, root)
    return root, plan
