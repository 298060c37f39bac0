"""The functional simulator: executes a Plan, layer by layer, from its packed data.

The Plan comes from memory (:func:`codesign.schedulers.planner.plan`, its data in
:attr:`~codesign.ir.plan.Plan.data`) or from a build directory (:func:`load_plan`, which checks
``schedule.json`` and reads each data file against its sha256). Each layer runs through its
kind's executor (:mod:`codesign.kinds`); GEMM layers run tile by tile as the temporal block does
(:func:`codesign.kinds.gemm.execute`). All arithmetic is :mod:`codesign.sim.numerics`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import BuildError, OptionError
from codesign.ir.data import decode
from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import DataFile, Plan
from codesign.kinds import registry
from codesign.sim.build_files import load_plan, read

__all__ = ["Simulator", "load_plan", "simulate"]


class Simulator:
    """Runs one Plan on inputs keyed by the ONNX graph input names.

    ``source`` is a build directory (its schedule.json is read and checked) or a Plan made in
    memory (its data in ``plan.data``; with ``root`` as well, data missing from memory is read
    from that build).
    """

    def __init__(self, source: str | os.PathLike[str] | Plan, root: Path | None = None) -> None:
        if isinstance(source, Plan):
            self.root, self.plan = (Path(root) if root is not None else None), source
        else:
            self.root, self.plan = load_plan(source)
        #: the executors' caches (decoded data, regrouped weights, Host sessions), by key; they
        #: live as long as the Simulator, so repeated runs reuse them
        self.cache: dict[str, Any] = {}

    def data(self, f: DataFile) -> np.ndarray:
        """The array of a DataFile of the plan, decoded once per Simulator and read-only (runs
        share it: an executor that wrote into it would change the next run)."""
        key = f"{f.sha256}:{f.path}"
        if key not in self.cache:
            blob = self.plan.data.get(f.sha256)
            if blob is not None:
                arr = decode(blob, f)
            elif self.root is not None:
                arr = read(self.root, f)
            else:
                raise BuildError(f"{f.path}: the plan holds no data with sha256 {f.sha256}")
            arr.flags.writeable = False
            self.cache[key] = arr
        return self.cache[key]

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Match inputs to the plan's graph inputs by name, shape and dtype."""
        out = {}
        expected = {t.name: t for t in self.plan.inputs}
        missing = sorted(set(expected) - set(inputs))
        if missing:
            raise OptionError(
                f"inputs must include {', '.join(missing)} (the graph inputs are {', '.join(expected)})"
            )
        for name, t in expected.items():
            x = np.asarray(inputs[name])
            if tuple(x.shape) != tuple(t.shape):
                raise OptionError(
                    f"input {name!r} must have shape {tuple(t.shape)}, not {tuple(x.shape)}"
                )
            want = numpy_dtype(t.dtype)
            if x.dtype != want and not np.can_cast(x.dtype, want, casting="same_kind"):
                raise OptionError(f"input {name!r} must be {t.dtype}, not {x.dtype}")
            out[name] = x.astype(want, copy=False)
        return out

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute every layer in order; return the graph outputs by name."""
        env = self.run_all(inputs)
        # an output that is (a view of) the plan's read-only data is the caller's to change
        return {
            t.name: env[t.name] if env[t.name].flags.writeable else env[t.name].copy()
            for t in self.plan.outputs
        }

    def run_all(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute every layer in order; return every tensor (inputs, constants, activations)."""
        env: dict[str, np.ndarray] = dict(self.check_inputs(inputs))
        for name, f in self.plan.constants.items():
            env[name] = self.data(f)
        # float overflow to inf/NaN is IEEE arithmetic the hardware does too, not a warning
        with np.errstate(all="ignore"):
            for layer in self.plan.layers:
                results = registry.executor(layer)(
                    self, layer, [env[i] if i else None for i in layer.inputs]
                )
                for name, value in zip(layer.outputs, results, strict=True):
                    env[name] = value
        return env


def simulate(build: str | os.PathLike[str], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the build at ``build`` on ``inputs``; return its outputs by graph output name."""
    if not inputs and not Path(build).exists():
        raise BuildError(f"{build}: no such build directory")
    from codesign.sim.memory import check_fits

    sim = Simulator(build)
    check_fits(sim.plan, build)
    return sim.run(inputs)
