"""Reading a build directory for the simulator and the report: its plan and its data files.

Only reads (the writer is :mod:`codesign.codegen`): :func:`load_plan` parses and checks
``schedule.json`` (:func:`codesign.sim.plan_check.check_plan`); :func:`read` returns one data file
as an array, checked against the sha256 and the size the plan gives. Every problem is a
:class:`~codesign.errors.BuildError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from codesign.errors import BuildError
from codesign.ir.data import decode, sha256
from codesign.ir.plan import DataFile, Plan, from_json


def read_bytes(build: Path, f: DataFile, verify: bool = True) -> bytes:
    """The stored bytes of a DataFile; BuildError if missing or (``verify``) not matching its
    sha256."""
    path = Path(build) / f.path
    try:
        data = path.read_bytes()
    except OSError:
        raise BuildError(f"{path}: data file named in schedule.json is missing") from None
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
    try:
        plan = from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as e:
        raise BuildError(f"{path}: unreadable schedule: {' '.join(str(e).split())[:300]}") from None
    check_plan(plan, root)
    return root, plan
