"""Pruned attention heads leave the plan: their Q/K/V columns, products and O rows go.

A *head region* is a set of tensors that carry one head axis from the projections to the output
projection of an attention block. Each tensor ``t`` of the region is seen, in row-major order, as
``[P, H, R]``: element ``(p, h, r)`` belongs to head ``h``. A region is grown from a batch axis
of a :class:`~codesign.kinds.batched_matmul.BatchedMatMul` (QK^T, attention x V) over every op
that touches one of its tensors, and each op must keep heads apart:

- a Reshape keeps the row-major order, so input and output have the same ``[P, H, R]``;
- a Transpose moves the head axis (it must be a whole axis, ``shape[a] == H``);
- a BatchedMatMul computes each batch index from the same batch index of its operands: the head
  axis must be a batch axis of both operands and of the output (through the read/write perms);
- an element-wise Vector or Nonlinear op (:data:`codesign.passes.shrink.ELEMENTWISE`,
  :data:`NONLINEAR_PER_ELEMENT`: scaling, a mask add, per-tensor quantize/dequantize, exp, a
  where ...) computes element ``(p, h, r)`` from the same element of its
  region inputs; any other input is a constant or a tensor broadcast over the heads (extent 1
  on the head axis: a padding or causal mask), or a constant holding one value per head lane
  (then sliced with the heads);
- a Movement slice (unit steps) or concat along another axis than the heads' (the halves of a
  rotary embedding) keeps each head's elements in its head; a slice along the heads' axis
  must start and end on whole cycles of heads (Q, K or V out of a fused QKV projection, whose
  start then counts the kept heads);
- a RowNorm (softmax over the key axis, a norm) reduces over the last axis only, which must not
  hold heads: each head's rows are normalised alone;
- a producer Gemm (Q, K, V) whose output is in the region: head ``h`` is a set of its output
  columns (the last axis), computed from the unchanged input alone;
- a consumer Gemm (O) whose activation is in the region: head ``h`` is a set of its K rows.

Anything else touching a region tensor (a graph input or output, a fork into another op, a
dynamic quantisation: ``dynamic_quantize`` takes the range of the whole tensor, so every head
changes the others' values; a per-channel Q/DQ with an axis; a reshape that splits the head
axis) leaves the region's heads as they are.

Head ``h`` is removed when its K rows of every consumer Gemm's weight are all zero (the
pruned model's O rows, :func:`codesign.frontend.prune.prune_model` ``heads``): no output of the
block depends on it, since by the rules above head ``h``'s values only reach other head-``h``
values and those rows. Then its columns of the producers (weight, bias, column sums and
per-channel requantisation), its slice of every region tensor and of every per-head constant,
and its rows of the consumers go; H becomes H - k in every shape and Reshape target of the
region and every slice start on the heads' axis; perms do not change. At least one head is
kept.

Exactness. The kept heads compute the same values: each is computed from the same inputs by
the same per-head ops (softmax stays per row; per-tensor static Q/DQ use the same scale and
zero point; a batched product's K and its zero-point correction are per head and unchanged).
The consumer drops zero rows only: for integer GEMMs the accumulator is the same sum, and the
static activation zero point folded into the bias (``- a_zp * colsum``) or applied at run time
(``colsum``) is unchanged, since a zero row adds nothing to a column sum. For bf16 the products
of the dropped rows were ``x * 0 = 0`` for finite ``x`` (a head whose values are inf or NaN would
have made NaN, as ONNX does; the removed head is not computed), and the fp32 sum of the same
nonzero products may be grouped differently across the K tiling, as for shrink-gemms's rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from codesign.ir.graph import Gemm, KernelGraph, Op, Reshape, TensorType, Vector
from codesign.ir.nonlinear import Nonlinear, RowNorm
from codesign.kinds.batched_matmul import BatchedMatMul, perm_or_identity
from codesign.kinds.movement import Movement
from codesign.kinds.transpose import Transpose
from codesign.passes.base import Pass, PassResult, PostconditionError
from codesign.passes.shrink import ELEMENTWISE, NONLINEAR_LANEWISE, _slice
from codesign.sim import nonlinear as sim_nonlinear
from codesign.sim import vector

#: ``(P, H, R)``: a tensor seen row-major as [P, H, R], H heads
Layout = tuple[int, int, int]

#: Nonlinear-kind functions computed element by element with numpy broadcasting: shrink's
#: lane-wise functions and the selections of a mask or of torch's NaN guard of a softmax
NONLINEAR_PER_ELEMENT = NONLINEAR_LANEWISE | {"where", "equal", "not"}


def _per_element(op: Op) -> bool:
    """Whether ``op`` computes each output element from the same element of its inputs
    (numpy broadcasting): the element-wise Vector and Nonlinear functions."""
    if isinstance(op, Vector):
        return op.fn in ELEMENTWISE and op.fn in vector.FUNCTIONS
    if isinstance(op, Nonlinear):
        return op.fn in NONLINEAR_PER_ELEMENT and op.fn in sim_nonlinear.ELEMENTWISE
    return False


def _block_axis(shape: tuple[int, ...], lay: Layout) -> int | None:
    """The axis holding every head block of ``shape`` under ``lay`` (the one whose extent is a
    multiple of H and that the removal shrinks), or None when the heads straddle axes."""
    p, h, r = lay
    for a, n in enumerate(shape):
        p0, r0 = math.prod(shape[:a]), math.prod(shape[a + 1 :])
        if p % p0 == 0 and r % r0 == 0 and n == (p // p0) * h * (r // r0) and n > 1:
            return a
    return None


def _full_axis(shape: tuple[int, ...], lay: Layout) -> int | None:
    """The axis that is exactly the head axis (``shape[a] == H``), or None."""
    a = _block_axis(shape, lay)
    if a is None or shape[a] != lay[1] or math.prod(shape[:a]) != lay[0]:
        return None
    return a


def _layout(shape: tuple[int, ...], a: int) -> Layout:
    return math.prod(shape[:a]), shape[a], math.prod(shape[a + 1 :])


def _lane_heads(shape: tuple[int, ...], lay: Layout, a: int) -> np.ndarray:
    """The head of each index of axis ``a`` (the block axis of ``shape``)."""
    r0 = math.prod(shape[a + 1 :])
    return (np.arange(shape[a]) * r0 // lay[2]) % lay[1]


@dataclass
class _Region:
    """The tensors of one head region with their layouts, and the ops around them."""

    layouts: dict[str, Layout] = field(default_factory=dict)
    ops: dict[int, Op] = field(default_factory=dict)
    producers: list[Gemm] = field(default_factory=list)
    consumers: list[Gemm] = field(default_factory=list)
    # (op, input index, output axis): a constant input with one value per head lane on the axis
    per_head: list[tuple[Op, int, int]] = field(default_factory=list)
    # tensors an op reads broadcast over the heads: they must stay outside the region
    broadcast: set[str] = field(default_factory=set)


class _NotPerHead(Exception):
    """An op of the region that does not keep heads apart: the region is left alone."""


def _assign(region: _Region, todo: list[str], t: str, lay: Layout) -> None:
    old = region.layouts.get(t)
    if old is None:
        region.layouts[t] = lay
        todo.append(t)
    elif old != lay:
        raise _NotPerHead(t)


def _elementwise(kg: KernelGraph, region: _Region, todo: list[str], op: Op) -> None:
    """A lane-wise Vector/Nonlinear op or a RowNorm: see the module docstring."""
    if len(op.outputs) != 1:
        raise _NotPerHead(op.name)
    out = op.outputs[0]
    so = kg.types[out].shape
    lay = region.layouts.get(out)
    live = [i for i in op.inputs if i and not kg.is_const(i)]
    if lay is None:
        known = [i for i in live if i in region.layouts and kg.types[i].shape == so]
        if not known:
            raise _NotPerHead(op.name)  # a region tensor broadcast to a larger shape
        lay = region.layouts[known[0]]
    a = _block_axis(so, lay)
    if a is None:
        raise _NotPerHead(op.name)
    if isinstance(op, RowNorm):
        # the reduction (last) axis must not hold heads; gamma/beta are on the last axis
        if a == len(so) - 1 or kg.types[op.inputs[0]].shape != so:
            raise _NotPerHead(op.name)
        _assign(region, todo, out, lay)
        _assign(region, todo, op.inputs[0], lay)
        return
    axis = dict(op.attrs).get("axis")
    for k, i in enumerate(op.inputs):
        if not i:
            continue
        si = kg.types[i].shape
        if not kg.is_const(i) and si == so:
            _assign(region, todo, i, lay)
            continue
        if kg.is_const(i) and kg.const(i).size == 1:
            continue
        if axis is not None or len(si) > len(so):
            raise _NotPerHead(op.name)  # a per-channel parameter along an axis
        ext = si[a - (len(so) - len(si))] if a >= len(so) - len(si) else 1
        if ext == 1:
            if i in region.layouts:
                raise _NotPerHead(op.name)  # one head's tensor broadcast over the heads
            region.broadcast.add(i)
            continue  # broadcast over the heads (a mask): unchanged
        if kg.is_const(i) and ext == so[a]:
            region.per_head.append((op, k, a))
            continue
        raise _NotPerHead(op.name)
    _assign(region, todo, out, lay)


def _batched(kg: KernelGraph, region: _Region, todo: list[str], op: BatchedMatMul) -> None:
    """The head axis is the same batch axis of both operands and of the output."""
    names = (op.inputs[0], op.inputs[1], op.outputs[0])
    shapes = [kg.types[n].shape for n in names]
    rank = len(shapes[2])
    perms = (
        perm_or_identity(op.a_perm, len(shapes[0])),
        perm_or_identity(op.b_perm, len(shapes[1])),
    )
    out_perm = perm_or_identity(op.out_perm, rank)
    # view axis of each tensor's own axis: operands read through their perm, the output
    # written through out_perm (own axis j holds view axis out_perm[j])
    view_axis = [
        lambda a, p=perms[0]: p.index(a),
        lambda a, p=perms[1]: p.index(a),
        lambda a: out_perm[a],
    ]
    own_axis = [lambda v, p=perms[0]: p[v], lambda v, p=perms[1]: p[v], out_perm.index]
    batch = rank - 2
    v = None
    for k, n in enumerate(names):
        if kg.is_const(n) or not n:
            raise _NotPerHead(op.name)
        if n in region.layouts:
            a = _full_axis(shapes[k], region.layouts[n])
            if a is None:
                raise _NotPerHead(op.name)
            vk = view_axis[k](a)
            if vk >= batch or (v is not None and vk != v):
                raise _NotPerHead(op.name)
            v = vk
    if v is None:
        raise _NotPerHead(op.name)
    for k, n in enumerate(names):
        _assign(region, todo, n, _layout(shapes[k], own_axis[k](v)))


def _movement(kg: KernelGraph, region: _Region, todo: list[str], op: Movement) -> None:
    """A slice (unit steps) or a concat: along another axis than the heads' (a whole axis),
    each head keeps its own elements (rotary halves); along the heads' block axis, a slice
    must start and end on a whole cycle of heads (Q, K or V out of a fused QKV projection)."""
    lays = region.layouts
    names = [*op.inputs, *op.outputs]
    if op.fn not in ("slice", "concat") or any(not n or kg.is_const(n) for n in names):
        raise _NotPerHead(op.name)
    if op.fn == "slice" and (len(op.inputs) != 1 or any(st != 1 for st in op.steps)):
        raise _NotPerHead(op.name)
    shapes = [kg.types[n].shape for n in names]
    y_shape = shapes[-1]
    if op.fn == "slice":
        cut = [
            i
            for i, (n, m) in enumerate(zip(shapes[0], y_shape, strict=True))
            if n != m or op.starts[i]
        ]
    else:
        cut = [op.axis % len(y_shape)]
    known = next(n for n in names if n in lays)
    shape = kg.types[known].shape
    full = _full_axis(shape, lays[known])
    if full is not None and cut and full not in cut and len(cut) == 1:
        for n, sh in zip(names, shapes, strict=True):
            _assign(region, todo, n, _layout(sh, full))
        return
    a = _block_axis(shape, lays[known])
    if op.fn != "slice" or cut != [a]:
        raise _NotPerHead(op.name)
    _, h, r = lays[known]
    r0 = math.prod(shape[a + 1 :])
    period = h * (r // r0)  # indices of axis a per cycle of heads
    if any(sh[a] % period for sh in shapes) or op.starts[a] % period:
        raise _NotPerHead(op.name)
    for n, sh in zip(names, shapes, strict=True):
        _assign(region, todo, n, (math.prod(sh[:a]) * (sh[a] // period), h, r))


def _visit(kg: KernelGraph, region: _Region, todo: list[str], op: Op) -> None:
    """Add what ``op`` says about the layouts of its tensors (one of them is in the region)."""
    lays = region.layouts
    if isinstance(op, Gemm):
        x, y = op.inputs[0], op.outputs[0]
        if (x in lays) == (y in lays) or len(op.outputs) != 1:
            raise _NotPerHead(op.name)
        t, role = (y, region.producers) if y in lays else (x, region.consumers)
        shape = kg.types[t].shape
        if _block_axis(shape, lays[t]) != len(shape) - 1:
            raise _NotPerHead(op.name)  # the heads are not lanes of the feature axis
        if any(i in lays for i in op.inputs[1:] if i):
            raise _NotPerHead(op.name)  # a run-time zero point computed from the heads
        role.append(op)
    elif isinstance(op, Reshape | Transpose):
        x, y = op.inputs[0], op.outputs[0]
        sx, sy = kg.types[x].shape, kg.types[y].shape
        if isinstance(op, Reshape):
            lay = lays.get(x) or lays[y]
            _assign(region, todo, x, lay)
            _assign(region, todo, y, lay)
        elif x in lays:
            a = _full_axis(sx, lays[x])
            if a is None:
                raise _NotPerHead(op.name)
            _assign(region, todo, y, _layout(sy, list(op.perm).index(a)))
        else:
            b = _full_axis(sy, lays[y])
            if b is None:
                raise _NotPerHead(op.name)
            _assign(region, todo, x, _layout(sx, op.perm[b]))
    elif isinstance(op, BatchedMatMul):
        _batched(kg, region, todo, op)
    elif isinstance(op, Movement):
        _movement(kg, region, todo, op)
    elif isinstance(op, RowNorm) or _per_element(op):
        _elementwise(kg, region, todo, op)
    else:
        raise _NotPerHead(op.name)


def _grow(kg: KernelGraph, start: str, lay: Layout) -> _Region | None:
    """The head region around tensor ``start`` with layout ``lay``, or None when an op on the
    way does not keep heads apart (see the module docstring)."""
    region = _Region()
    todo: list[str] = []
    try:
        _assign(region, todo, start, lay)
        while todo:
            t = todo.pop()
            if kg.is_graph_output(t) or kg.is_const(t):
                return None
            producer = kg.producer(t)
            if producer is None:
                return None  # a graph input
            for op in (producer, *kg.consumers(t)):
                if id(op) not in region.ops:
                    region.ops[id(op)] = op
                    _visit(kg, region, todo, op)
    except _NotPerHead:
        return None
    for t, lay in region.layouts.items():
        if _block_axis(kg.types[t].shape, lay) is None:
            return None
    if not region.consumers or not region.producers:
        return None
    # a tensor reached from two sides: an op took it for outside the region before it was in
    if region.broadcast & region.layouts.keys():
        return None
    if any(p.inputs[0] in region.layouts for p in region.producers) or any(
        c.outputs[0] in region.layouts for c in region.consumers
    ):
        return None
    return region


def _removable(kg: KernelGraph, region: _Region) -> list[int]:
    """The heads whose K rows of every consumer's weight are all zero (not all of them)."""
    h = next(iter(region.layouts.values()))[1]
    unused = np.ones(h, dtype=bool)
    for c in region.consumers:
        x = c.inputs[0]
        shape = kg.types[x].shape
        heads = _lane_heads(shape, region.layouts[x], len(shape) - 1)
        nonzero = np.any(kg.const(c.weight) != 0, axis=1)
        unused &= ~np.bincount(heads, weights=nonzero, minlength=h).astype(bool)
    removed = [int(i) for i in np.flatnonzero(unused)]
    return removed[1:] if len(removed) == h else removed


def remove_heads(kg: KernelGraph, region: _Region, removed: list[int]) -> None:
    """Remove heads ``removed`` from ``region`` (see the module docstring)."""
    gone = np.asarray(removed)

    def keep(t: str, a: int) -> np.ndarray:
        shape = kg.types[t].shape
        return np.flatnonzero(~np.isin(_lane_heads(shape, region.layouts[t], a), gone))

    new: dict[int, Op] = {}
    for p in region.producers:
        y = p.outputs[0]
        cols = keep(y, len(kg.types[y].shape) - 1)
        r = p.requant
        new[id(p)] = replace(
            p,
            weight=kg.add_const(p.weight, np.ascontiguousarray(kg.const(p.weight)[:, cols])),
            bias=_slice(kg, p.bias, cols),
            colsum=_slice(kg, p.colsum, cols),
            requant=None
            if r is None
            else replace(
                r, multiplier=_slice(kg, r.multiplier, cols), shift=_slice(kg, r.shift, cols)
            ),
        )
    for c in region.consumers:
        x = c.inputs[0]
        rows = keep(x, len(kg.types[x].shape) - 1)
        # colsum and a folded zero-point bias are sums over K: the dropped rows added zero
        w = kg.const(c.weight)
        new[id(c)] = replace(c, weight=kg.add_const(c.weight, np.ascontiguousarray(w[rows])))
    for orig, k, a in region.per_head:
        op = new.get(id(orig), orig)
        out = op.outputs[0]
        name = op.inputs[k]
        c = kg.const(name)
        axis = a - (len(kg.types[out].shape) - c.ndim)
        sliced = kg.add_const(name, np.ascontiguousarray(np.take(c, keep(out, a), axis=axis)))
        inputs = list(op.inputs)
        inputs[k] = sliced
        new[id(orig)] = replace(op, inputs=tuple(inputs))
    h = next(iter(region.layouts.values()))[1]
    old_shapes = {t: kg.types[t].shape for t in region.layouts}
    for t, lay in region.layouts.items():
        old = kg.types[t]
        a = _block_axis(old.shape, lay)
        assert a is not None  # checked by _grow
        shape = list(old.shape)
        shape[a] = shape[a] // h * (h - len(removed))
        kg.types[t] = TensorType(tuple(shape), old.dtype)
    for op in region.ops.values():
        if isinstance(op, Reshape):
            new[id(op)] = replace(op, shape=kg.types[op.outputs[0]].shape)
        elif isinstance(op, Movement) and op.fn == "slice":
            # a start on the block axis is a whole number of head cycles: as many new ones
            x = op.inputs[0]
            a = _block_axis(old_shapes[x], region.layouts[x])
            starts = list(op.starts)
            if a is not None and starts[a]:
                starts[a] = starts[a] * kg.types[x].shape[a] // old_shapes[x][a]
            new[id(op)] = replace(op, starts=tuple(starts))
    for op in region.ops.values():
        if id(op) in new:
            kg.replace(op, new[id(op)])


def _regions(kg: KernelGraph) -> list[tuple[_Region, list[int]]]:
    """Every head region of ``kg`` grown from a batched product's batch axis, with its
    removable heads (possibly none)."""
    found: list[tuple[_Region, list[int]]] = []
    seen: set[tuple[str, int]] = set()
    for op in kg.ops:
        if not isinstance(op, BatchedMatMul):
            continue
        y = op.outputs[0]
        shape = kg.types[y].shape
        out_perm = perm_or_identity(op.out_perm, len(shape))
        for v in range(len(shape) - 2):
            a = out_perm.index(v)
            if shape[a] < 2 or (y, a) in seen:
                continue
            region = _grow(kg, y, _layout(shape, a))
            if region is None:
                continue
            for t, lay in region.layouts.items():
                fa = _full_axis(kg.types[t].shape, lay)
                if fa is not None:
                    seen.add((t, fa))
            found.append((region, _removable(kg, region)))
    return found


def prune_heads(kg: KernelGraph) -> bool:
    """Remove every removable head of ``kg``; return whether the graph changed.

    The regions are grown once per sweep and every region with removable heads is cut in that
    sweep, so a model pays one sweep (and one to confirm) whatever its number of attention
    blocks. A region that shares an op or a tensor with one already cut in the sweep waits for
    the next sweep, which grows it again on the changed graph."""
    changed = False
    while True:
        cut: set[int | str] = set()
        waiting = False
        for region, removed in _regions(kg):
            if not removed:
                continue
            mine = _footprint(region)
            if mine & cut:
                waiting = True
                continue
            remove_heads(kg, region, removed)
            cut |= mine
            changed = True
        if not waiting:
            return changed


def _footprint(region: _Region) -> set[int | str]:
    """The ops (by identity) and tensors (by name) that cutting ``region`` may change."""
    ops = [*region.ops.values(), *region.producers, *region.consumers]
    ops += [op for op, _, _ in region.per_head]
    return {id(op) for op in ops} | set(region.layouts)


@dataclass(frozen=True)
class PruneHeads(Pass):
    """Attention heads whose rows of the output projection are all zero leave the Q/K/V
    projections, the batched products and the ops between them (see the module docstring)."""

    name: ClassVar[str] = "prune-heads"

    def call(self, kg: KernelGraph) -> PassResult:
        return PassResult(prune_heads(kg))

    def ensures(self, kg: KernelGraph) -> None:
        for region, removed in _regions(kg):
            if removed:
                names = sorted(c.name for c in region.consumers)
                raise PostconditionError(f"{self.name}: {names} still read removable heads")
