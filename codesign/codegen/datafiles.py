"""Writing a plan's data files into a build.

The planner packs data in memory (:class:`codesign.ir.data.DataPacker`); :func:`write_data`
stores each DataFile's bytes at its path. Reading them back is
:func:`codesign.sim.build_files.read` (the simulator reads; it never imports this writer).
"""

from __future__ import annotations

from pathlib import Path

from codesign.errors import BuildError
from codesign.fileio import make_dir_in, write_in
from codesign.ir.plan import Plan, data_files
from codesign.sim.build_files import read

__all__ = ["read", "write_data"]


def write_data(root: Path, plan: Plan) -> dict[str, str]:
    """Write every DataFile of ``plan`` under ``root`` from ``plan.data``; return the sha256 of
    each file written by its path relative to ``root``.

    Raises :class:`BuildError` when the plan does not hold the bytes of one of its files (a plan
    read from a build: load its data first). Every file is written through
    :func:`codesign.fileio.write_in` (no symlink followed); folders are made one level at a
    time inside ``root`` (never ``root`` or its parents)."""
    make_dir_in(root, "weights")  # never the build's parents (see codesign.fileio)
    hashes: dict[str, str] = {}
    for f in data_files(plan):
        if f.path in hashes:
            continue
        blob = plan.data.get(f.sha256)
        if blob is None:
            raise BuildError(f"{f.path}: the plan holds no data with sha256 {f.sha256}")
        make_dirs_in(root, f.path)
        hashes[f.path] = write_in(root, f.path, blob)
        if hashes[f.path] != f.sha256:
            raise BuildError(f"{root / f.path}: the plan's data does not match its sha256")
    return hashes


def make_dirs_in(root: Path, rel: str) -> None:
    """Create the folders of the file ``rel`` inside ``root``, one level at a time, without
    following symlinks (:func:`codesign.fileio.make_dir_in`)."""
    parts = Path(rel).parts[:-1]
    for i in range(1, len(parts) + 1):
        make_dir_in(root, Path(*parts[:i]))
