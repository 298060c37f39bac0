"""Writing a plan's data files into a build.

The planner packs data in memory (:class:`codesign.ir.data.DataPacker`); :func:`write_data`
stores each DataFile's bytes at its path. Reading them back is
:func:`codesign.sim.build_files.read` (the simulator reads; it never imports this writer).
"""

from __future__ import annotations

from pathlib import Path

from codesign.errors import BuildError
from codesign.ir.plan import Plan, data_files
from codesign.sim.build_files import read

__all__ = ["read", "write_data"]


def write_data(root: Path, plan: Plan) -> dict[str, str]:
    """Write every DataFile of ``plan`` under ``root`` from ``plan.data``; return the sha256 of
    each file written by its path relative to ``root``.

    Raises :class:`BuildError` when the plan does not hold the bytes of one of its files (a plan
    read from a build: load its data first)."""
    (root / "weights").mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    for f in data_files(plan):
        if f.path in hashes:
            continue
        blob = plan.data.get(f.sha256)
        if blob is None:
            raise BuildError(f"{f.path}: the plan holds no data with sha256 {f.sha256}")
        path = root / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        hashes[f.path] = f.sha256
    return hashes
