"""Structured zeros shrink the GEMMs: pruned neurons leave the plan instead of being computed.

An *edge* is a producer GEMM ``P`` whose output reaches the activation of a consumer GEMM ``C``
through a chain of element-wise vector ops (ReLU, a cast, a bias add, a requantisation written as
dequantize/quantize, the activations of :data:`ELEMENTWISE`), each tensor on the way read by the
next op only and not a graph output. Feature ``j`` of the edge is column ``j`` of P's weight, the
``j``-th lane of every chain tensor and row ``j`` of C's weight. It is removed when:

- row ``j`` of C's weight is all zero: C ignores the feature. Exact for integer GEMMs (the
  zero-point correction ``a_zp * colsum`` does not change: the row adds nothing to a column sum).
  For bf16 it is exact for finite activations; ONNX would make ``inf * 0`` a NaN, the shrunk
  GEMM does not see the lane.
- column ``j`` of P's weight is all zero (a dead neuron): P's output ``j`` does not depend on the
  input. It is the value P's epilogue makes of a zero accumulator (``colsum_j`` is 0 too): the
  bias through ReLU, SRS and requantisation, computed by the numerics package's epilogue; each
  chain op is then evaluated on that constant (:mod:`codesign.sim.vector`, the functions the
  simulator runs). A neuron with a zero weight column but a bias is *not* dead weight: its
  constant ``v_j`` is folded into C's bias as ``v_j * C.weight[j, :]``: exactly in the
  accumulator for integer GEMMs (wrap-around int32 addition is associative; ``colsum`` stays, it
  still subtracts ``a_zp * W[j, :]`` as the original GEMM did); for bf16 in float32 from the
  bf16-rounded constant, so the result equals the original within the rounding of C's fp32
  accumulation (exact when ``v_j`` is 0, the usual case: no bias, ReLU/GELU with f(0) = 0). A
  non-finite constant is never folded: the feature is kept.

At least one feature of an edge is kept (a GEMM has N >= 1). Edges are shrunk to a fixpoint:
dropping rows of C can leave a column of C all zero, which makes the next edge's neuron dead.

Not shrunk: a feature read by anything else than the chain (a fork, a graph output); a chain
through an op that is not element-wise per feature (a dynamic quantisation takes the whole
tensor's range; a reshape mixes axes); all-zero rows of a GEMM whose activation comes from a
graph input (there is no op that drops input lanes). Attention heads, whose features pass
through reshapes and batched products, are removed by :mod:`codesign.passes.heads`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from codesign.ir.graph import Gemm, KernelGraph, Op, TensorType, Vector
from codesign.ir.nonlinear import Nonlinear
from codesign.passes.base import Pass, PassResult, PostconditionError
from codesign.passes.match import _sole_consumer
from codesign.passes.quant import _acc_constant
from codesign.sim import nonlinear, numerics, vector

#: Vector functions computed lane by lane (lane j of the output depends only on lane j of the
#: chain input and of per-channel constants), so a feature can leave the chain. Names another
#: kind module registers in :data:`codesign.sim.vector.FUNCTIONS` (the activations) join here.
ELEMENTWISE = frozenset(
    {
        "add",
        "sub",
        "mul",
        "relu",
        "cast",
        "quantize",
        "dequantize",
        "gelu",
        "gelu_tanh",
        "silu",
        "sigmoid",
        "tanh",
        "erf",
        "exp",
        "neg",
        "abs",
    }
)


#: Nonlinear-kind functions computed lane by lane (:data:`codesign.sim.nonlinear.ELEMENTWISE`
#: without the ops that broadcast or select across tensors).
NONLINEAR_LANEWISE = frozenset(
    {"exp", "erf", "tanh", "sigmoid", "sqrt", "reciprocal", "silu", "gelu", "div", "pow", "neg"}
)


def _lane_op(op: Op | None) -> bool:
    """Whether ``op`` computes lane by lane (a feature can leave a chain through it)."""
    if isinstance(op, Vector):
        return op.fn in ELEMENTWISE and op.fn in vector.FUNCTIONS
    if isinstance(op, Nonlinear):
        return op.fn in NONLINEAR_LANEWISE and op.fn in nonlinear.ELEMENTWISE
    return False


def _lane_apply(op: Op, xs: list[np.ndarray]) -> np.ndarray:
    """Run the lane-wise chain op ``op`` (see :func:`_lane_op`) on ``xs``."""
    if isinstance(op, Vector):
        (value,) = vector.apply(op.fn, xs, dict(op.attrs))
        return value
    if isinstance(op, Nonlinear):
        return nonlinear.apply(nonlinear.ELEMENTWISE, op.fn, xs, dict(op.attrs))
    raise TypeError(f"{op.name!r} ({type(op).__name__}) is not a lane-wise chain op")


@dataclass(frozen=True)
class _Edge:
    producer: Gemm
    chain: tuple[Vector | Nonlinear, ...]
    consumer: Gemm
    tensors: tuple[str, ...]  # P's output, then each chain op's output (the last is C's input)


def _per_feature(kg: KernelGraph, name: str, n: int, ndim: int, axis: object) -> str | None:
    """How constant ``name`` of a chain op broadcasts: "scalar", "channel" (one value per
    feature on the last axis) or None (anything else: the op is not per feature)."""
    c = kg.const(name)
    if c.size == 1:
        return "scalar"
    if c.ndim >= 1 and c.shape[-1] == n and c.size == n:
        if axis is not None and c.ndim == 1 and int(axis) % ndim != ndim - 1:  # type: ignore[call-overload]
            return None
        return "channel"
    return None


def _find_edge(kg: KernelGraph, consumer: Gemm) -> _Edge | None:
    """The edge ending at ``consumer``'s activation, or None."""
    t = consumer.inputs[0]
    chain: list[Vector | Nonlinear] = []
    tensors = [t]
    while True:
        if _sole_consumer(kg, t) is None:
            return None
        op = kg.producer(t)
        if isinstance(op, Gemm):
            break
        if not _lane_op(op):
            return None
        if len(op.outputs) != 1:
            return None
        live = [i for i in op.inputs if i and not kg.is_const(i)]
        if len(live) != 1 or op.inputs.count(live[0]) != 1:
            return None
        if kg.types[live[0]].shape != kg.types[t].shape:
            return None  # a constant broadcasts the lanes to a larger shape
        chain.insert(0, op)
        t = live[0]
        tensors.insert(0, t)
    producer = op
    n = kg.const(producer.weight).shape[1]
    shape = kg.types[producer.outputs[0]].shape
    if not shape or shape[-1] != n or kg.const(consumer.weight).shape[0] != n:
        return None
    for v in chain:
        for i in v.inputs:
            if (
                i
                and kg.is_const(i)
                and _per_feature(kg, i, n, len(shape), dict(v.attrs).get("axis")) is None
            ):
                return None
    return _Edge(producer, tuple(chain), consumer, tuple(tensors))


def _dead_values(kg: KernelGraph, e: _Edge, dead: np.ndarray) -> np.ndarray:
    """The constants the dead features ``dead`` take at the consumer's input (its dtype)."""
    p = e.producer
    ndim = len(kg.types[p.outputs[0]].shape)
    lanes = (1,) * (ndim - 1) + (len(dead),)

    def cols(name: str | None) -> np.ndarray | None:
        if name is None:
            return None
        c = kg.const(name)
        return c.reshape(-1)[dead] if c.size > 1 else c.reshape(-1)

    zero = np.zeros(lanes, dtype=np.float32 if p.dtype == "bf16" else np.int64)
    if p.dtype == "bf16":
        value = numerics.gemm_epilogue_bf16(zero, bias=cols(p.bias), relu=p.relu)
    else:
        r = p.requant
        requant = None
        if r is not None:
            requant = (cols(r.multiplier), cols(r.shift), r.zero_point, r.dtype, r.rounding)
        value = numerics.gemm_epilogue_int(
            zero,
            dtype=p.dtype,
            bias=cols(p.bias),
            acc_shift=p.acc_shift,
            relu=p.relu,
            requant=requant,
        )
    n = kg.const(p.weight).shape[1]
    for v, t in zip(e.chain, e.tensors[:-1], strict=True):
        xs = []
        for i in v.inputs:
            if i == t:
                xs.append(value)
            elif i and _per_feature(kg, i, n, ndim, dict(v.attrs).get("axis")) == "channel":
                c = kg.const(i)
                xs.append(c.reshape(-1)[dead].reshape((1,) * (c.ndim - 1) + (len(dead),)))
            elif i:
                xs.append(kg.const(i))
        with np.errstate(all="ignore"):
            value = _lane_apply(v, xs)
    return np.asarray(value).reshape(-1)


def _fold_into_bias(kg: KernelGraph, c: Gemm, rows: np.ndarray, values: np.ndarray) -> str | None:
    """C's bias with ``values @ C.weight[rows]`` added (the dead features' constant products);
    None when nothing is added (all values zero) and C keeps its bias."""
    w = kg.const(c.weight)[rows]
    if c.dtype == "bf16":
        v16 = numerics.to_bf16(values.astype(np.float32)).astype(np.float64)
        add = (v16 @ w.astype(np.float64)).astype(np.float32)
        if not np.any(add):
            return None
        old = kg.const(c.bias).astype(np.float32) if c.bias else np.float32(0)
        return kg.add_const(f"{c.name}/bias", (old + add).astype(np.float32))
    add = values.astype(np.int64) @ w.astype(np.int64)
    if not np.any(add):
        return None
    old = kg.const(c.bias).astype(np.int64) if c.bias else np.int64(0)
    return kg.add_const(f"{c.name}/bias", _acc_constant(old + add, c.dtype))


def _slice(kg: KernelGraph, name: str | None, keep: np.ndarray, axis: int = -1) -> str | None:
    """A new constant: ``name`` with only the ``keep`` lanes on ``axis`` (size-1 kept as is)."""
    if name is None:
        return None
    c = kg.const(name)
    if c.size == 1 and axis == -1:
        return name
    return kg.add_const(name, np.ascontiguousarray(np.take(c, keep, axis=axis)))


def shrink_edge(kg: KernelGraph, e: _Edge) -> bool:
    """Remove the features of edge ``e`` that C ignores or that are dead (see the module
    docstring); return whether any went."""
    p, c = e.producer, e.consumer
    wp, wc = kg.const(p.weight), kg.const(c.weight)
    n = wp.shape[1]
    unused = ~np.any(wc != 0, axis=1)
    dead = ~np.any(wp != 0, axis=0) & ~unused
    dead_idx = np.flatnonzero(dead)
    values = _dead_values(kg, e, dead_idx) if dead_idx.size else np.zeros(0)
    if p.dtype == "bf16" or values.dtype.kind == "f":
        finite = np.isfinite(values.astype(np.float64))
        dead[dead_idx[~finite]] = False  # a non-finite constant cannot be folded: keep it
        values = values[finite]
        dead_idx = dead_idx[finite]
    remove = unused | dead
    if remove.all():  # keep one feature: a GEMM has N >= 1
        first = 0
        remove[first] = False
        if dead[first]:
            values = values[dead_idx != first]
            dead_idx = dead_idx[dead_idx != first]
            dead[first] = False
    if not remove.any():
        return False
    keep = np.flatnonzero(~remove)
    new_bias = _fold_into_bias(kg, c, dead_idx, values) if dead_idx.size else None
    # the consumer: K shrinks (rows), its bias absorbs the dead features' constants
    c_new = replace(
        c,
        weight=kg.add_const(c.weight, np.ascontiguousarray(wc[keep])),
        bias=new_bias if new_bias is not None else c.bias,
    )
    # the producer: N shrinks (columns, and every per-channel epilogue constant)
    r = p.requant
    p_new = replace(
        p,
        weight=kg.add_const(p.weight, np.ascontiguousarray(wp[:, keep])),
        bias=_slice(kg, p.bias, keep),
        colsum=_slice(kg, p.colsum, keep),
        requant=None
        if r is None
        else replace(r, multiplier=_slice(kg, r.multiplier, keep), shift=_slice(kg, r.shift, keep)),
    )
    ndim = len(kg.types[p.outputs[0]].shape)
    chain_new: list[Op] = []
    for v in e.chain:
        inputs = tuple(
            _slice(kg, i, keep)
            if i
            and kg.is_const(i)
            and _per_feature(kg, i, n, ndim, dict(v.attrs).get("axis")) == "channel"
            else i
            for i in v.inputs
        )
        chain_new.append(replace(v, inputs=inputs))
    for t in e.tensors:
        old = kg.types[t]
        kg.types[t] = TensorType((*old.shape[:-1], len(keep)), old.dtype)
    kg.replace(p, p_new)
    for old_op, new_op in zip(e.chain, chain_new, strict=True):
        kg.replace(old_op, new_op)
    kg.replace(c, c_new)
    return True


def shrink_gemms(kg: KernelGraph) -> bool:
    """Shrink every edge of ``kg`` to a fixpoint; return whether the graph changed."""
    changed = False
    again = True
    while again:
        again = False
        for op in kg.ops:
            if op in kg and isinstance(op, Gemm):
                e = _find_edge(kg, op)
                if e is not None and shrink_edge(kg, e):
                    again = changed = True
    return changed


@dataclass(frozen=True)
class ShrinkGemms(Pass):
    """All-zero weight columns (dead neurons) and rows (ignored inputs) leave the GEMMs of
    every producer -> element-wise chain -> consumer edge (see the module docstring)."""

    name: ClassVar[str] = "shrink-gemms"

    def call(self, kg: KernelGraph) -> PassResult:
        return PassResult(shrink_gemms(kg))

    def ensures(self, kg: KernelGraph) -> None:
        for op in kg.ops:
            if isinstance(op, Gemm):
                e = _find_edge(kg, op)
                if e is None or kg.const(e.producer.weight).shape[1] == 1:
                    continue
                if not np.all(np.any(kg.const(op.weight) != 0, axis=1)):
                    raise PostconditionError(f"{self.name}: {op.name!r} still has a zero row")
