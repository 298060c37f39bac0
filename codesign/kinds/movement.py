"""The movement kind: data movement without arithmetic -- slice, concat, gather, expand.

KernelGraph op :class:`Movement`, plan layer :class:`MovementLayer` (both defined here). The
frontend lowers ONNX Slice, Split (one slice per output: a fused QKV projection), Concat, Gather
(an embedding lookup: a constant table indexed by integer ids) and Expand to it
(:mod:`codesign.frontend.lower_movement`).

``fn`` and its parameters (every field is static; shapes come from the tensors):

- ``slice``: inputs ``(x,)``; ``starts``, ``steps`` give, per axis, the first element and the
  (positive) stride; the output's shape gives the count.
- ``concat``: inputs ``(x0, x1, ...)`` joined along ``axis``.
- ``gather``: inputs ``(data, indices)``; ``data`` indexed along ``axis`` by the integer
  ``indices`` (negative ones count from the end, as in ONNX), output shape
  ``data.shape[:axis] + indices.shape + data.shape[axis + 1:]``.
- ``expand``: inputs ``(x,)`` broadcast to the output's shape.

The cost (:mod:`codesign.cost.movement`) is what the bytes do: a slice that is one contiguous
run of its input is a view and costs nothing; anything else is a copy through a PL data mover
that reads and writes its bytes. No arithmetic is done, so the outputs equal onnxruntime's
exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from codesign.cost.movement import estimate_movement, is_view_slice, movement_traffic
from codesign.errors import ModelError
from codesign.ir.graph import Op, TensorType
from codesign.ir.plan import Layer, Plan
from codesign.kinds.registry import (
    Cost,
    Emitted,
    LayerMemory,
    OpKind,
    no_output_scale,
    register,
)

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker

#: the functions of the kind
FUNCTIONS = ("slice", "concat", "gather", "expand")


@dataclass(frozen=True)
class Movement(Op):
    """Data movement (see the module docstring for ``fn`` and its parameters)."""

    fn: str = "slice"
    axis: int = 0
    starts: tuple[int, ...] = ()
    steps: tuple[int, ...] = ()
    kind: ClassVar[str] = "movement"


@dataclass(frozen=True)
class MovementLayer(Layer):
    """A :class:`Movement` in the plan: a view or a PL data mover copy."""

    fn: str = "slice"
    axis: int = 0
    starts: tuple[int, ...] = ()
    steps: tuple[int, ...] = ()
    kind: ClassVar[str] = "movement"
    unit: ClassVar[str] = "pl"


def apply(
    fn: str, args: list[np.ndarray], out_shape: tuple[int, ...], axis: int, starts, steps
) -> np.ndarray:
    """The one definition of what a movement computes (the executor and constant folding)."""
    if fn == "slice":
        index = tuple(
            slice(s, s + st * n, st) for s, st, n in zip(starts, steps, out_shape, strict=True)
        )
        return np.ascontiguousarray(args[0][index])
    if fn == "concat":
        return np.concatenate(args, axis=axis)
    if fn == "gather":
        data, idx = args
        n = data.shape[axis]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise ModelError(
                f"gather indices must lie in [{-n}, {n}) (ONNX Gather), not "
                f"{int(idx.min())}..{int(idx.max())}"
            )
        return np.take(data, np.where(idx < 0, idx + n, idx), axis=axis)
    if fn == "expand":
        return np.ascontiguousarray(np.broadcast_to(args[0], out_shape))
    raise ValueError(f"movement fn must be one of {', '.join(FUNCTIONS)}, not {fn!r}")


def index_bound(plan: Plan, name: str) -> int | None:
    """The number of rows every gather of ``plan`` reading ``name`` as its indices, as it is or
    through reshapes (which keep the values), can index (the smallest extent of their gathered
    axes), or None when no gather reads it: random inputs for the simulator draw ids below it,
    as a tokenizer's would be."""
    readers: dict[str, list] = {}
    for layer in plan.layers:
        for i in set(layer.inputs):
            readers.setdefault(i, []).append(layer)
    bounds, todo = [], [name]
    while todo:
        tensor = todo.pop()
        for layer in readers.get(tensor, []):
            if layer.kind == "reshape":
                todo.extend(layer.outputs)
            elif (
                isinstance(layer, MovementLayer)
                and layer.fn == "gather"
                and layer.inputs[1] == tensor
            ):
                bounds.append(plan.value_spec(layer.inputs[0]).shape[layer.axis])
    return min(bounds) if bounds else None


def plan(ctx: PlanContext, op: Movement) -> MovementLayer:
    """The layer as the op; constant inputs (an embedding table) become plan constants."""
    for name in op.inputs:
        if name and ctx.kg.is_const(name):
            ctx.constant(name)
    return MovementLayer(
        op.name, op.inputs, op.outputs, fn=op.fn, axis=op.axis, starts=op.starts, steps=op.steps
    )


def execute(sim: Simulator, layer: MovementLayer, args: list) -> tuple[np.ndarray]:
    """The layer on its input arrays; ModelError naming the layer for gather indices out of
    range (the user's ids)."""
    out = sim.plan.tensor(layer.outputs[0]).shape
    try:
        return (apply(layer.fn, list(args), tuple(out), layer.axis, layer.starts, layer.steps),)
    except ModelError as e:
        raise ModelError(f"layer {layer.name!r}: {e}") from None


def check(ck: PlanChecker, m: MovementLayer) -> None:
    """Shapes and parameters the executor can run as written."""
    if m.fn not in FUNCTIONS:
        ck.fail(f"fn must be one of {', '.join(FUNCTIONS)}, not {m.fn!r}")
    n_in = {"slice": 1, "expand": 1, "gather": 2}.get(m.fn, len(m.inputs))
    ck.count(m, n_in if m.fn != "concat" else max(1, len(m.inputs)), 1)
    ins = [ck.shapes[n] for n in m.inputs]
    out = ck.shapes[m.outputs[0]]
    x = ins[0]
    if m.fn != "gather" and any(ck.dtypes[n] != ck.dtypes[m.outputs[0]] for n in m.inputs):
        ck.fail("inputs and output must have one dtype")
    if m.fn == "slice":
        if len(m.starts) != len(x) or len(m.steps) != len(x) or len(out) != len(x):
            ck.fail(f"slice needs a start and a step per axis of {list(x)}")
        for s, st, n, d in zip(m.starts, m.steps, out, x, strict=True):
            if st < 1 or s < 0 or (n and s + st * (n - 1) >= d):
                ck.fail(f"slice start {s} step {st} count {n} must lie inside {d}")
    elif m.fn == "concat":
        if not 0 <= m.axis < len(out) or any(len(s) != len(out) for s in ins):
            ck.fail(f"concat axis {m.axis} must lie inside rank {len(out)}")
        want = list(out)
        want[m.axis] = sum(s[m.axis] for s in ins)
        if any(s[: m.axis] + s[m.axis + 1 :] != out[: m.axis] + out[m.axis + 1 :] for s in ins) or (
            tuple(want) != out
        ):
            ck.fail(f"concat of {[list(s) for s in ins]} along {m.axis} must give {list(out)}")
    elif m.fn == "gather":
        idx = ins[1]
        if not 0 <= m.axis < len(x):
            ck.fail(f"gather axis {m.axis} must lie inside rank {len(x)}")
        if ck.dtypes[m.inputs[1]] not in ("int32", "int64"):
            ck.fail("gather indices must be int32 or int64")
        if (
            out != x[: m.axis] + idx + x[m.axis + 1 :]
            or ck.dtypes[m.inputs[0]] != ck.dtypes[m.outputs[0]]
        ):
            ck.fail(f"gather of {list(x)} by {list(idx)} must give {list(x)}'s dtype and shape")
    else:
        try:
            ok = np.broadcast_shapes(x, out) == out
        except ValueError:
            ok = False
        if not ok:
            ck.fail(f"expand of {list(x)} must broadcast to {list(out)}")


def view_offset(plan: Plan, layer: Layer) -> int | None:
    """Where a view's output starts in its input, in elements, or None when ``layer`` is not a
    view: a slice that is one contiguous run of its input
    (:func:`codesign.cost.movement.is_view_slice`). A build's arena gives a view no bytes of
    its own (it aliases that run of its input), and its kind no data mover, as the cost model
    says: a view costs nothing."""
    if not isinstance(layer, MovementLayer) or layer.fn != "slice":
        return None
    x = _type(plan, layer.inputs[0]).shape
    out = _type(plan, layer.outputs[0]).shape
    if not is_view_slice(x, out, layer.steps):
        return None
    stride, offset = 1, 0
    for a in reversed(range(len(x))):
        offset += layer.starts[a] * stride
        stride *= x[a]
    return offset


def _type(plan: Plan, name: str) -> TensorType:
    t = plan.value_spec(name)
    return TensorType(tuple(t.shape), t.dtype)


def cost(ctx: CostContext, stage: list[MovementLayer]) -> Cost | None:
    """A view costs nothing (None: no stage in the report); a copy streams its bytes through a
    PL data mover (see :mod:`codesign.cost.movement`)."""
    (layer,) = stage
    plan = ctx.plan
    ins = [_type(plan, n) for n in layer.inputs]
    out = _type(plan, layer.outputs[0])
    traffic = movement_traffic(
        layer.fn,
        [t.shape for t in ins],
        [t.nbytes for t in ins],
        out.shape,
        out.nbytes,
        axis=layer.axis,
        steps=layer.steps,
    )
    if traffic.view:
        return None
    est = estimate_movement(ctx.board, layer.name, layer.fn, traffic)
    return Cost(est, {"movement": layer.fn, "bytes_read": traffic.bytes_read})


def memory(plan: Plan, layer: MovementLayer) -> LayerMemory:
    """The output (a copy) and, for a gather, the normalised indices."""
    out = math.prod(plan.tensor(layer.outputs[0]).shape)
    extra = math.prod(plan.value_spec(layer.inputs[1]).shape) if layer.fn == "gather" else 0
    return LayerMemory(transient=(out + extra) * 8)


def copy_loops(plan: Plan, layer: MovementLayer) -> list[dict]:
    """The layer as copy loops of :func:`codesign.hls.pl.copy_file` (what :func:`apply`
    computes, element by element): each output element's source element, by strides."""
    from codesign.hls import pl
    from codesign.ir.data import itemsize

    out_name = layer.outputs[0]
    out = pl.shape_of(plan, out_name)
    ost = pl.row_major(out)
    size = itemsize(plan.value_spec(out_name).dtype)
    x = pl.shape_of(plan, layer.inputs[0])
    xst = pl.row_major(x)
    one = {"dims": out, "size": size, "src": layer.inputs[0], "dst": out_name, "dst_base": 0}
    if layer.fn == "slice":
        base = sum(s * st for s, st in zip(layer.starts, xst, strict=True))
        steps = [st * step for st, step in zip(xst, layer.steps, strict=True)]
        return [{**one, "src_base": base, "src_strides": steps, "dst_strides": ost}]
    if layer.fn == "expand":
        return [
            {**one, "src_base": 0, "src_strides": pl.broadcast_strides(out, x), "dst_strides": ost}
        ]
    if layer.fn == "gather":
        a, idx = layer.axis, pl.shape_of(plan, layer.inputs[1])
        k = len(idx)
        src = xst[:a] + [0] * k + xst[a + 1 :]
        at = [0] * a + pl.row_major(idx) + [0] * (len(x) - a - 1)
        index = {"name": layer.inputs[1], "strides": at, "extent": x[a], "stride": xst[a]}
        return [{**one, "src_base": 0, "src_strides": src, "dst_strides": ost, "index": index}]
    loops, offset = [], 0  # concat: each input copied into its block of the output
    for name in layer.inputs:
        shape = pl.shape_of(plan, name)
        loops.append(
            {
                "dims": shape,
                "size": size,
                "src": name,
                "dst": out_name,
                "src_base": 0,
                "src_strides": pl.row_major(shape),
                "dst_base": offset * ost[layer.axis],
                "dst_strides": ost,
            }
        )
        offset += shape[layer.axis]
    return loops


def emit(plan: Plan, layers: list[MovementLayer]) -> Emitted:
    """The PL data mover of each layer that is not a view (``hls/l<i>_<name>.h``:
    ``<ident>_run(arena)`` copies the layer's elements between their arena regions;
    :func:`codesign.hls.pl.copy_file`)."""
    from codesign.hls import pl

    return Emitted(
        files=tuple(
            pl.copy_file(plan, i, layer, f"movement {layer.fn}", copy_loops(plan, layer))
            for i, layer in pl.indexed(plan, layers)
            if view_offset(plan, layer) is None  # a view aliases its input in the arena
        )
    )


KIND = register(
    OpKind(
        name="movement",
        op=Movement,
        layer=MovementLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,  # a moved value keeps no step of its own here
    )
)
