"""How much host memory simulating a build takes, and whether the host has it.

:func:`estimate` works from the Plan alone (shapes, dtypes, schedules), before anything is read
or allocated, and follows what :mod:`codesign.sim.functional` keeps:

- every tensor of the plan (graph inputs and every layer's outputs stay in the environment);
- every constant and data file as read, plus what each layer caches for the run (a GEMM's
  weight regrouped per core as float64);
- the largest transient working set of one layer;

the last two from each layer's kind (its ``memory`` entry in :mod:`codesign.kinds`);
- with ``--reference``, onnxruntime's copy of the model and of the tensors.

:func:`available` reads MemAvailable from /proc/meminfo (os.sysconf where there is none) and
the cgroup v2 limit of the process, if lower. :func:`check_fits` refuses with both numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codesign.errors import MemoryLimitError
from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import DataFile, Plan
from codesign.kinds import registry


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a simulation needs, by part (each an upper-bound-minded estimate)."""

    tensors: int
    weights: int
    working_set: int
    reference: int

    @property
    def total(self) -> int:
        return self.tensors + self.weights + self.working_set + self.reference


def _elements(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _stored_bytes(f: DataFile) -> int:
    """Bytes of a data file once read (bf16 is widened to float32)."""
    return _elements(f.shape) * (4 if f.dtype == "bf16" else numpy_dtype(f.dtype).itemsize)


def estimate(plan: Plan, reference: bool = False, model_bytes: int = 0) -> MemoryEstimate:
    """The memory simulating ``plan`` takes (see the module docstring); ``model_bytes`` is the
    size of the build's model.onnx, loaded by onnxruntime with ``reference``."""
    tensors = sum(
        _elements(t.shape) * numpy_dtype(t.dtype).itemsize for t in (*plan.inputs, *plan.tensors)
    )
    weights = sum(_stored_bytes(f) for f in plan.constants.values())
    working = 0
    largest_file = max((_stored_bytes(f) for f in plan.constants.values()), default=0)
    for layer in plan.layers:
        need = registry.memory(layer)(plan, layer)
        weights += sum(need.files) + need.cached
        largest_file = max((largest_file, *need.files))
        working = max(working, need.transient)
    working += 2 * largest_file  # a data file's bytes and their decoded copy, while read
    ref = model_bytes + tensors if reference else 0
    return MemoryEstimate(tensors, weights, working, ref)


def available() -> tuple[int, str]:
    """(bytes of memory available to this process, where the number comes from)."""
    avail, source = None, ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail, source = int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
                break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            source = "sysconf(SC_AVPHYS_PAGES)"
        except (OSError, ValueError, AttributeError):
            return 2**63 - 1, "unknown (no limit applied)"
    limit = _cgroup_room()
    if limit is not None and limit < avail:
        return limit, "the cgroup's memory.max"
    return avail, source


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), or None."""
    try:
        line = Path("/proc/self/cgroup").read_text().splitlines()[0]
        rel = line.split(":", 2)[2].lstrip("/")
        base = Path("/sys/fs/cgroup") / rel
        high = (base / "memory.max").read_text().strip()
        if high == "max":
            return None
        return max(0, int(high) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError, IndexError):
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_fits(
    plan: Plan,
    build: str | os.PathLike[str] | None,
    reference: bool = False,
    model_bytes: int | None = None,
) -> MemoryEstimate:
    """Refuse (:class:`MemoryLimitError`) a simulation that would not fit the available memory;
    return the estimate otherwise. ``model_bytes`` (the reference model's size) defaults to the
    size of ``build``'s model.onnx; ``build`` None is a plan held in memory."""
    if model_bytes is None:
        try:
            model_bytes = (Path(build) / "model.onnx").stat().st_size if reference and build else 0
        except OSError:
            model_bytes = 0
    model_bytes = model_bytes if reference else 0
    est = estimate(plan, reference, model_bytes)
    room, source = available()
    if est.total > room:
        raise MemoryLimitError(
            f"{build or plan.model or 'plan'}: simulating this build needs about {_gib(est.total)} of memory "
            f"(tensors {_gib(est.tensors)}, weights {_gib(est.weights)}, largest layer "
            f"{_gib(est.working_set)}, onnxruntime reference {_gib(est.reference)}), but only "
            f"{_gib(room)} is available ({source})"
        )
    return est


__all__ = ["MemoryEstimate", "available", "check_fits", "estimate"]
