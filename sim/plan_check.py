"""Checks of a Plan read from a build directory, before the simulator or the report use it.

Builds travel (CI artifacts, colleagues); a damaged or hand-edited schedule.json must be refused
with a :class:`~codesign.errors.BuildError` naming the layer or tensor, not crash the simulator.
:func:`codesign.ir.plan.from_json` already checks the JSON types; :func:`check_plan` checks what
the types cannot say:

- tensors: unique names, known dtypes, dimensions in 1..MAX_DIM, at most MAX_ELEMENTS elements;
- data files: relative paths inside the build (no ``..``, no absolute path, no symlink out), known
  dtypes and layouts, sizes within the limits;
- layers, in order: inputs defined before use, outputs declared; GEMM schedules consistent with
  their tensors (M, K, N, native multiples, tile counts, padding, the packed weight's size) and
  epilogue parameters in range; vector functions known, with their inputs, attributes and
  broadcastable shapes; reshapes that keep the element count.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from codesign.errors import BuildError
from codesign.ir.graph import DTYPES, numpy_dtype
from codesign.ir.layouts import B_LAYOUT
from codesign.ir.limits import MAX_DIM, MAX_ELEMENTS
from codesign.ir.plan import DataFile, GemmLayer, Layer, Plan, ReshapeLayer, VectorLayer
from codesign.sim import numerics, vector

LAYOUTS = ("row-major", B_LAYOUT)
#: Number of inputs of each vector function (None: any number of at least one).
_VECTOR_ARITY = {
    "add": 2,
    "sub": 2,
    "mul": 2,
    "relu": 1,
    "cast": 1,
    "quantize": 3,
    "dequantize": 3,
    "dynamic_quantize": 1,
}


class _Checker:
    def __init__(self, plan: Plan, root: Path) -> None:
        self.plan, self.root = plan, root
        self.where = f"{root / 'schedule.json'}"
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}

    def fail(self, what: str) -> None:
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
            self.where = f"{self.root / 'schedule.json'}: layer {i} {layer.name!r} ({layer.kind})"
            for name in layer.inputs:
                if name and name not in defined:
                    self.fail(f"input {name!r} must be defined before the layer")
            for name in layer.outputs:
                if name not in self.shapes:
                    self.fail(f"output {name!r} must be listed in tensors")
            if isinstance(layer, GemmLayer):
                self.gemm(layer)
            elif isinstance(layer, VectorLayer):
                self.vector(layer)
            elif isinstance(layer, ReshapeLayer):
                self.reshape(layer)
            defined.update(layer.outputs)
        self.where = str(self.root / "schedule.json")
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

    def gemm(self, g: GemmLayer) -> None:
        self.count(g, (1, 2), 1)
        s = g.schedule
        if s is None or g.weight is None:
            self.fail("a GEMM needs a schedule and a weight")
        if g.dtype not in numerics.ACCUMULATOR_BITS and g.dtype != "bf16":
            self.fail(f"dtype must be int8, int16 or bf16, not {g.dtype!r}")
        a, out = self.shapes[g.inputs[0]], self.shapes[g.outputs[0]]
        M, K, N = math.prod(a[:-1]), a[-1] if a else 0, out[-1] if out else 0
        if (s.M, s.K, s.N) != (M, K, N) or math.prod(out) != M * N or s.dtype != g.dtype:
            self.fail(
                f"schedule {s.M}x{s.K}x{s.N} {s.dtype} must match its tensors ({M}x{K}x{N} "
                f"{g.dtype})"
            )
        b, t, nat = s.block, s.tile, s.native
        if min(b.chains, b.cascade, *nat, t.m, t.k, t.n) < 1:
            self.fail("block, native shape and tile must be positive")
        if t.m % nat[0] or t.k % nat[1] or t.n % nat[2]:
            self.fail(f"tile {t} must be a multiple of the native shape {list(nat)}")
        counts = (
            math.ceil(M / t.m),
            math.ceil(N / (b.chains * t.n)),
            math.ceil(K / (b.cascade * t.k)),
        )
        padded = (counts[0] * t.m, counts[2] * b.cascade * t.k, counts[1] * b.chains * t.n)
        if (s.m_tiles, s.n_tiles, s.k_passes) != counts or (
            s.padded_M,
            s.padded_K,
            s.padded_N,
        ) != padded:
            self.fail("tile counts and padding must follow from M, K, N, the block and the tile")
        self.datafile(g.weight, "weight")
        if tuple(g.weight.shape) != (K, N) or g.weight.layout != B_LAYOUT:
            self.fail(f"weight must be [{K}, {N}] in layout {B_LAYOUT}")
        self.file_elements(g.weight, padded[1] * padded[2], "weight")
        for name in ("bias", "colsum"):
            f = getattr(g, name)
            if f is not None:
                self.datafile(f, name)
                if tuple(f.shape) != (N,):
                    self.fail(f"{name} must have shape [{N}], not {list(f.shape)}")
        if len(g.inputs) == 2 and g.colsum is None:
            self.fail("a run-time activation zero point needs colsum")
        if not 0 <= g.acc_shift <= 62:
            self.fail(f"acc_shift must lie in 0..62, not {g.acc_shift}")
        r = g.requant
        if r is not None:
            for f, name in ((r.multiplier, "multiplier"), (r.shift, "shift")):
                self.datafile(f, f"requant {name}")
                if tuple(f.shape) not in ((N,), (1,)):
                    self.fail(f"requant {name} must have shape [{N}] or [1], not {f.shape}")
            if r.dtype not in ("int8", "uint8", "int16"):
                self.fail(f"requant dtype must be int8, uint8 or int16, not {r.dtype!r}")
            lo, hi = numerics.int_range(r.dtype)
            if not lo <= r.zero_point <= hi:
                self.fail(f"requant zero point must lie in {lo}..{hi}, not {r.zero_point}")
            if r.rounding not in numerics.ROUNDING_MODES:
                self.fail(f"requant rounding must be one of {numerics.ROUNDING_MODES}")

    def vector(self, v: VectorLayer) -> None:
        if v.fn not in vector.FUNCTIONS:
            self.fail(f"fn must be one of {', '.join(sorted(vector.FUNCTIONS))}, not {v.fn!r}")
        ins = [name for name in v.inputs if name]
        self.count(v, len(v.inputs), 3 if v.fn == "dynamic_quantize" else 1)
        if len(ins) != _VECTOR_ARITY[v.fn]:
            self.fail(f"{v.fn} takes {_VECTOR_ARITY[v.fn]} inputs, not {len(ins)}")
        attrs = dict(v.attrs)
        x, out = self.shapes[ins[0]], self.shapes[v.outputs[0]]
        if v.fn in ("add", "sub", "mul"):
            try:
                ok = np.broadcast_shapes(*(self.shapes[n] for n in ins), out) == out
            except ValueError:
                ok = False
            if not ok:
                self.fail(f"input shapes must broadcast to the output shape {list(out)}")
        elif v.fn != "dynamic_quantize" and x != out:
            self.fail(f"{v.fn} must keep the shape {list(x)}, not {list(out)}")
        if v.fn in ("quantize", "dequantize"):
            self.quant_params(v, ins, attrs, x)
        if v.fn == "cast":
            self.dtype(str(attrs.get("to")), "cast 'to'")
            if attrs.get("to") != self.dtypes[v.outputs[0]]:
                self.fail("cast 'to' must be the output tensor's dtype")

    def quant_params(self, v: VectorLayer, ins: list[str], attrs: dict, x: tuple) -> None:
        axis = attrs.get("axis")
        if axis is not None and (
            isinstance(axis, bool) or not isinstance(axis, int) or not -len(x) <= axis < len(x)
        ):
            self.fail(f"axis must be null or lie in [{-len(x)}, {len(x)}), not {axis!r}")
        for name in ins[1:]:
            shape = self.shapes[name]
            per_axis = axis is not None and shape == (x[axis],)
            if math.prod(shape) != 1 and not per_axis:
                self.fail(f"{name!r} must be a single value or one per element of the axis")
        if v.fn == "quantize":
            dtype = attrs.get("dtype")
            if dtype not in numerics.INT_DTYPES or dtype != self.dtypes[v.outputs[0]]:
                self.fail(f"quantize dtype must be the output's integer dtype, not {dtype!r}")

    def reshape(self, r: ReshapeLayer) -> None:
        self.count(r, 1, 1)
        x, out = self.shapes[r.inputs[0]], self.shapes[r.outputs[0]]
        if math.prod(x) != math.prod(r.shape) or tuple(r.shape) != out:
            self.fail(f"reshape of {list(x)} to {list(r.shape)} must keep the element count")


def check_plan(plan: Plan, root: Path) -> None:
    """Refuse (:class:`BuildError`) a plan the simulator or the report cannot run as written."""
    _Checker(plan, Path(root)).check()
