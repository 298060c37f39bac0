"""``codesign check``: the generated code of a build, compiled and run on x86, compared bit for
bit with the simulator.

A *checker* covers one part of the build (``"aie"``: the AIE-ML kernels and graph;
``"hls"``: the PL kernels). It is a function ``fn(root, plan, env) -> list[CheckResult]`` where
``root`` is the build directory, ``plan`` its plan and ``env`` every tensor of the simulator's
run (:meth:`codesign.sim.functional.Simulator.run_all`) on the golden inputs. Checkers register
with :func:`register_checker`; :func:`check_build` runs them all.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from codesign.errors import BuildError, CodesignError
from codesign.ir.plan import Plan

if TYPE_CHECKING:
    from codesign.api import Build


class ToolMissingError(CodesignError):
    """A tool the check needs (g++) is not installed (exit 2)."""


@dataclass(frozen=True)
class CheckResult:
    """One layer's verdict for one part: did its generated code compile (without a warning),
    and did its output match the simulator bit for bit. ``max_diff`` is the largest absolute
    difference when both ran (None otherwise). ``skipped``: the part cannot run on this machine
    (``detail`` says what it needs); neither a pass nor a failure."""

    layer: str
    part: str
    compiled: bool
    matched: bool
    detail: str = ""
    max_diff: float | None = None
    skipped: bool = False

    @property
    def failed(self) -> bool:
        """Ran here, and did not compile or did not match."""
        return not self.skipped and not (self.compiled and self.matched)


Checker = Callable[[Path, Plan, dict[str, np.ndarray]], list[CheckResult]]

_CHECKERS: dict[str, Checker] = {}


def register_checker(part: str, fn: Checker) -> None:
    """Register (or replace) the checker of ``part``."""
    _CHECKERS[part] = fn


def checkers() -> dict[str, Checker]:
    """The registered checkers by part (the built-in AIE checker included)."""
    _builtin()
    return dict(_CHECKERS)


def _builtin() -> None:
    if "aie" not in _CHECKERS:
        from codesign.aie.check import check_aie

        register_checker("aie", check_aie)
    if "pl" not in _CHECKERS:
        from codesign.hls.check import check_hls

        register_checker("pl", check_hls)
    if "host" not in _CHECKERS:
        from codesign.hls.host_check import check_host

        register_checker("host", check_host)


def golden_inputs(build: Build) -> dict[str, np.ndarray]:
    """The inputs the check runs: ``golden/inputs.npz`` of the build when it has one, else the
    inputs golden/ is made from (:func:`codesign.codegen.vitis.golden_inputs`)."""
    from codesign.codegen.vitis import golden_inputs as seeded

    if build.root is not None:
        path = build.root / "golden" / "inputs.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    return {k: z[k] for k in z.files}
            except (OSError, ValueError) as e:
                raise BuildError(f"{path}: must be an .npz of the graph inputs ({e})") from None
    return seeded(build.plan)


def check_build(build: Build) -> list[CheckResult]:
    """Run every registered checker on ``build`` and return their results in part order.

    The simulator runs once on :func:`golden_inputs`; every checker compares against that run.
    A build held in memory is written to a temporary directory first (the checkers read the
    files a user would take to Vitis)."""
    from codesign.sim.functional import Simulator

    if shutil.which("g++") is None:
        raise ToolMissingError("codesign check needs g++ (C++20) on PATH; install it (apt g++)")
    sim = Simulator(build.plan, build.root)
    env = sim.run_all(golden_inputs(build))
    results: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="codesign-check-") as tmp:
        # absolute: the checkers run g++ in their own work directories
        root = None if build.root is None else Path(build.root).resolve()
        if root is None:
            root = Path(tmp) / "build"
            build.save(root)
        for _part, fn in sorted(checkers().items()):
            results += fn(root, build.plan, env)
    return results
