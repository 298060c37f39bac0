"""Lowerings of the data-movement ONNX ops: Slice, Split, Concat, Gather, Expand.

Each becomes :class:`codesign.kinds.movement.Movement` ops (Split one slice per output: the
fused QKV projection of GPT-2 and many Llama exports). Shapes are static after
canonicalisation, so every parameter (starts, steps, axes, the Expand shape) must be a constant
and is resolved here; the output shapes come from shape inference and are checked against the
parameters.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from codesign.errors import ModelError, UnsupportedError
from codesign.frontend.lowerings import lowering
from codesign.kinds.movement import Movement


def _attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _axis(lw, node: ir.Node, rank: int, default: int = 0) -> int:
    axis = int(_attr(node, "axis", default))
    if not -rank <= axis < rank:
        raise ModelError(f"{lw.where()}: axis must lie in [{-rank}, {rank}), not {axis}")
    return axis % rank


def _ints(lw, v: ir.Value | None, what: str) -> list[int] | None:
    if v is None:
        return None
    arr = lw.need_const(v, what)
    if arr.ndim > 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ModelError(f"{lw.where()}: {what} must be a 1-D integer tensor, not {arr.shape}")
    return [int(x) for x in arr.reshape(-1)]


def _emit_slice(lw, node: ir.Node, x: str, out: str, starts, steps) -> None:
    lw.emit(
        Movement(
            f"{node.name or out}" if len(node.outputs) == 1 else f"{node.name or out}/{out}",
            (x,),
            (out,),
            fn="slice",
            starts=tuple(starts),
            steps=tuple(steps),
        )
    )


@lowering("Slice")
def _slice(lw, node: ir.Node) -> None:
    ins = list(node.inputs) + [None] * (5 - len(node.inputs))
    x, starts_v, ends_v, axes_v, steps_v = ins[:5]
    shape = lw.kg.types[x.name].shape
    out_shape = lw.kg.types[node.outputs[0].name].shape
    rank = len(shape)
    starts = _ints(lw, starts_v, "Slice starts")
    ends = _ints(lw, ends_v, "Slice ends")
    axes = _ints(lw, axes_v, "Slice axes") or list(range(len(starts)))
    steps = _ints(lw, steps_v, "Slice steps") or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ModelError(f"{lw.where()}: starts, ends, axes and steps must have one length")
    first, stride = [0] * rank, [1] * rank
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        if not -rank <= a < rank:
            raise ModelError(f"{lw.where()}: axis {a} must lie in [{-rank}, {rank})")
        if st <= 0:
            raise UnsupportedError(
                f"{lw.where()}: Slice steps must be positive, not {st} (reversal is not supported)"
            )
        a %= rank
        # ONNX clamps starts and ends as Python's slice.indices does for positive steps
        lo, hi, st = slice(s, e, st).indices(shape[a])
        if len(range(lo, hi, st)) != out_shape[a]:
            raise ModelError(
                f"{lw.where()}: slice {s}:{e}:{st} of dimension {a} ({shape[a]}) must give "
                f"{out_shape[a]} elements as inferred"
            )
        first[a], stride[a] = lo, st
    for a in range(rank):
        if a not in {x % rank for x in axes} and shape[a] != out_shape[a]:
            raise ModelError(f"{lw.where()}: unsliced dimension {a} must keep its size")
    _emit_slice(lw, node, x.name, node.outputs[0].name, first, stride)


@lowering("Split")
def _split(lw, node: ir.Node) -> None:
    x = node.inputs[0]
    shape = lw.kg.types[x.name].shape
    axis = _axis(lw, node, len(shape))
    offset = 0
    for out in node.outputs:
        oshape = lw.kg.types[out.name].shape
        if oshape[:axis] + oshape[axis + 1 :] != shape[:axis] + shape[axis + 1 :]:
            raise ModelError(f"{lw.where()}: output {out.name!r} must keep the other dimensions")
        first = [0] * len(shape)
        first[axis] = offset
        _emit_slice(lw, node, x.name, out.name, first, [1] * len(shape))
        offset += oshape[axis]
    if offset != shape[axis]:
        raise ModelError(
            f"{lw.where()}: the outputs must cover dimension {axis} ({shape[axis]}), not {offset}"
        )


@lowering("Concat")
def _concat(lw, node: ir.Node) -> None:
    out = node.outputs[0].name
    shape = lw.kg.types[out].shape
    axis = _axis(lw, node, len(shape))
    names = tuple(v.name for v in node.inputs)
    total = 0
    for n in names:
        t = lw.kg.types[n].shape
        if len(t) != len(shape) or t[:axis] + t[axis + 1 :] != shape[:axis] + shape[axis + 1 :]:
            raise ModelError(f"{lw.where()}: input {n!r} {t} must match {shape} off axis {axis}")
        total += t[axis]
    if total != shape[axis]:
        raise ModelError(f"{lw.where()}: inputs must add up to {shape[axis]} along {axis}")
    lw.emit(Movement(node.name or out, names, (out,), fn="concat", axis=axis))


@lowering("Gather")
def _gather(lw, node: ir.Node) -> None:
    data, idx = node.inputs
    shape = lw.kg.types[data.name].shape
    axis = _axis(lw, node, len(shape))
    if lw.kg.types[idx.name].dtype not in ("int32", "int64"):
        raise ModelError(f"{lw.where()}: Gather indices must be int32 or int64")
    ids = lw.const_value(idx)
    if ids is not None and ids.size and (ids.min() < -shape[axis] or ids.max() >= shape[axis]):
        raise ModelError(
            f"{lw.where()}: Gather indices must lie in [{-shape[axis]}, {shape[axis]}), not "
            f"{int(ids.min())}..{int(ids.max())}"
        )
    out = node.outputs[0].name
    lw.emit(Movement(node.name or out, (data.name, idx.name), (out,), fn="gather", axis=axis))


@lowering("Expand")
def _expand(lw, node: ir.Node) -> None:
    x, shape_v = node.inputs
    _ints(lw, shape_v, "the Expand shape")  # a constant, checked; the output type holds it
    out = node.outputs[0].name
    src, want = lw.kg.types[x.name].shape, lw.kg.types[out].shape
    try:
        ok = np.broadcast_shapes(src, want) == want
    except ValueError:
        ok = False
    if not ok:
        raise ModelError(f"{lw.where()}: {list(src)} must broadcast to {list(want)}")
    lw.emit(Movement(node.name or out, (x.name,), (out,), fn="expand"))
