"""Checks of a Plan read from a build directory, before the simulator or the report use it.

Builds travel (CI artifacts, colleagues); a damaged or hand-edited schedule.json must be refused
with a :class:`~codesign.errors.BuildError` naming the layer or tensor, not crash the simulator.
:func:`codesign.ir.plan.from_json` already checks the JSON types; :func:`check_plan` checks what
the types cannot say:

- tensors: unique names, known dtypes, dimensions in 1..MAX_DIM, at most MAX_ELEMENTS elements;
- data files: relative paths inside the build (no ``..``, no absolute path, no symlink out), known
  dtypes and layouts, sizes within the limits;
- layers, in order: inputs defined before use, outputs declared, and then whatever the layer's
  kind checks (its ``check`` entry in :mod:`codesign.kinds`: a GEMM's schedule against its
  tensors, a vector function's inputs and attributes, a reshape's element count...).

A plan made in memory is checked the same way, its data sizes taken from the bytes it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from codesign.errors import BuildError
from codesign.ir.graph import DTYPES, numpy_dtype
from codesign.ir.layouts import B4_LAYOUT, B_LAYOUT, NM_INDEX_LAYOUT, NM_LAYOUT
from codesign.ir.limits import MAX_DIM, MAX_ELEMENTS
from codesign.ir.plan import DataFile, Layer, Plan
from codesign.kinds import registry

LAYOUTS = ("row-major", B_LAYOUT, NM_LAYOUT, NM_INDEX_LAYOUT, B4_LAYOUT)


class PlanChecker:
    """Walks a plan in order; each layer's kind checks it (``check`` entry) with the helpers
    here. ``shapes`` and ``dtypes`` hold the tensors defined so far (and the constants)."""

    def __init__(self, plan: Plan, root: Path | None) -> None:
        self.plan, self.root = plan, root
        self.source = str(root / "schedule.json") if root is not None else "plan"
        self.where = self.source
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}

    def fail(self, what: str) -> NoReturn:
        raise BuildError(f"{self.where}: {what}")

    def dims(self, shape: tuple[int, ...], what: str) -> int:
        count = 1
        for d in shape:
            if not 1 <= d <= MAX_DIM:
                self.fail(f"{what} dimensions must lie in 1..{MAX_DIM}, not {list(shape)}")
            count *= d
        if count > MAX_ELEMENTS:
            self.fail(f"{what} must have at most {MAX_ELEMENTS} elements, not {count}")
        return count

    def dtype(self, dtype: str, what: str) -> None:
        if dtype not in DTYPES:
            self.fail(f"{what} dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")

    def datafile(self, f: DataFile, what: str) -> None:
        rel = Path(f.path)
        if rel.is_absolute() or ".." in rel.parts or not f.path or "\0" in f.path:
            self.fail(f"{what} path must be a relative path inside the build, not {f.path!r}")
        if self.root is not None:
            base = self.root.resolve()
            if not (base / rel).resolve().is_relative_to(base):
                self.fail(f"{what} path {f.path!r} resolves outside the build (symlink)")
        self.dtype(f.dtype, what)
        if f.layout not in LAYOUTS:
            self.fail(f"{what} layout must be one of {', '.join(LAYOUTS)}, not {f.layout!r}")
        if f.shape:
            self.dims(f.shape, what)

    def file_elements(self, f: DataFile, count: int, what: str) -> None:
        """The stored file must hold exactly ``count`` elements of its dtype."""
        itemsize = 2 if f.dtype == "bf16" else numpy_dtype(f.dtype).itemsize
        blob = self.plan.data.get(f.sha256)
        if blob is not None:
            size = len(blob)
        elif self.root is None:
            self.fail(f"{what} data {f.path!r} is not held by the plan")
        else:
            try:
                size = (self.root / f.path).stat().st_size
            except OSError:
                self.fail(f"{what} file {f.path!r} is missing")
        if size != count * itemsize:
            self.fail(f"{what} file {f.path!r} must hold {count} elements, not {size} bytes")

    def check(self) -> None:
        plan = self.plan
        for t in plan.tensors:
            if not t.name or t.name in self.shapes:
                self.fail(f"tensor names must be unique and non-empty, not {t.name!r}")
            self.dtype(t.dtype, f"tensor {t.name!r}")
            self.dims(t.shape, f"tensor {t.name!r}")
            self.shapes[t.name], self.dtypes[t.name] = tuple(t.shape), t.dtype
        for t in plan.inputs:
            if self.shapes.get(t.name) != tuple(t.shape) or self.dtypes.get(t.name) != t.dtype:
                self.fail(f"graph input {t.name!r} must be listed in tensors with its shape")
        for name, f in plan.constants.items():
            self.datafile(f, f"constant {name!r}")
            if f.layout != "row-major":
                self.fail(f"constant {name!r} layout must be row-major, not {f.layout!r}")
            self.shapes.setdefault(name, tuple(f.shape))
            self.dtypes.setdefault(name, f.dtype)
        defined = {t.name for t in plan.inputs} | set(plan.constants)
        for i, layer in enumerate(plan.layers):
            self.where = f"{self.source}: layer {i} {layer.name!r} ({layer.kind})"
            for name in layer.inputs:
                if name and name not in defined:
                    self.fail(f"input {name!r} must be defined before the layer")
            for name in layer.outputs:
                if name not in self.shapes:
                    self.fail(f"output {name!r} must be listed in tensors")
            registry.checker(layer)(self, layer)
            defined.update(layer.outputs)
        self.where = self.source
        for t in plan.outputs:
            if t.name not in defined:
                self.fail(f"graph output {t.name!r} must be produced by a layer")

    def count(self, layer: Layer, n_in: int | tuple[int, ...], n_out: int) -> None:
        allowed = (n_in,) if isinstance(n_in, int) else n_in
        if len(layer.inputs) not in allowed or len(layer.outputs) != n_out:
            self.fail(
                f"must have {' or '.join(map(str, allowed))} inputs and {n_out} outputs, not "
                f"{len(layer.inputs)} and {len(layer.outputs)}"
            )


def check_plan(plan: Plan, root: Path | None) -> None:
    """Refuse (:class:`BuildError`) a plan the simulator or the report cannot run as written;
    ``root`` is its build directory (None for a plan held in memory)."""
    PlanChecker(plan, Path(root) if root is not None else None).check()
