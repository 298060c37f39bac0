"""The KernelGraph: a small typed graph of hardware-level ops.

The frontend lowers ONNX into a KernelGraph of *primitive* ops (one per ONNX node, with
QuantizeLinear/DequantizeLinear kept as explicit ops); the passes in :mod:`codesign.passes` rewrite
it into *hardware* ops (:class:`Gemm` on the AIE block, :class:`Vector` element-wise ops,
:class:`Reshape` views) that the schedulers map and the simulator executes.

Ops are frozen dataclasses; tensors are referred to by name. The graph holds the tensor types, the
constant values, and the ops in a topological order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codesign.ir.dtypes import DTYPES as _REGISTRY

#: Tensor element types the KernelGraph knows, by name.
DTYPES = ("float32", "bf16", "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32", "int64")

#: numpy storage by dtype, from the registry (bf16 left out: a float32 array is float32)
_NUMPY = {n: d.numpy.type for n, d in _REGISTRY.items() if n != "bf16"}


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype that stores values of KernelGraph dtype ``dtype`` (bf16 as float32)."""
    return np.dtype(_NUMPY.get(dtype, np.float32))


@dataclass(frozen=True)
class TensorType:
    """Static shape and element type of a tensor."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        d = _REGISTRY.get(self.dtype)
        return d.nbytes(self.size) if d is not None else (self.size * 32 + 7) // 8


@dataclass(frozen=True)
class Op:
    """Base of every KernelGraph op: a name (the ONNX node it came from), inputs and outputs."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    kind: ClassVar[str] = "op"

    @property
    def refs(self) -> tuple[str, ...]:
        """Constants the op reads through its parameters (not its inputs)."""
        return ()


# --- primitive ops (frontend output) -----------------------------------------------------------


@dataclass(frozen=True)
class QuantizeLinear(Op):
    """inputs (x, scale, zero_point); ONNX QuantizeLinear to ``dtype``."""

    dtype: str = "int8"
    axis: int | None = None
    kind: ClassVar[str] = "quantize"


@dataclass(frozen=True)
class DequantizeLinear(Op):
    """inputs (x, scale, zero_point); ONNX DequantizeLinear to float32."""

    axis: int | None = None
    kind: ClassVar[str] = "dequantize"


@dataclass(frozen=True)
class DynamicQuantizeLinear(Op):
    """inputs (x,); outputs (y uint8, scale, zero_point)."""

    kind: ClassVar[str] = "dynamic_quantize"


@dataclass(frozen=True)
class MatMul(Op):
    """inputs (a, b): float32 matrix product over the last axis of a, b constant [K, N]."""

    kind: ClassVar[str] = "matmul"


@dataclass(frozen=True)
class MatMulInteger(Op):
    """inputs (a, b, a_zero_point, b_zero_point): exact int32 product of zero-point-shifted ints."""

    kind: ClassVar[str] = "matmul_integer"


# --- hardware ops (passes output) --------------------------------------------------------------


@dataclass(frozen=True)
class Requant:
    """Requantisation of int32 accumulators: per-channel or per-tensor multiplier and shift.

    ``multiplier`` and ``shift`` name int32/int64 constants of shape [N] or [1].
    """

    multiplier: str
    shift: str
    zero_point: int
    dtype: str
    rounding: str = "conv_even"


@dataclass(frozen=True)
class Gemm(Op):
    """The GEMM that runs on the AIE-ML block: ``out[..., N] = a[..., K] @ weight[K, N]``.

    inputs: ``(a,)`` or ``(a, a_zero_point)`` when the activation zero point is a run-time tensor
    (dynamic quantisation). ``weight`` names a constant [K, N] already shifted by its zero point;
    ``bias`` an optional constant [N] (int32 for integer GEMMs, with a static activation zero
    point already folded in; float32 for bf16). ``colsum`` names the constant column sums of the
    weight, needed only for a run-time activation zero point.

    Arithmetic (see :func:`codesign.sim.numerics.gemm_epilogue_int`): for integer ``dtype``
    (int8 into acc32, int16 into acc64) acc = sum a*w + bias - a_zp*colsum, SRS by
    ``acc_shift`` to int32, optional ReLU, then ``requant`` (or the int32 value is the output). For ``bf16``: operands rounded to bf16, fp32 accumulation,
    fp32 bias, optional ReLU, float32 output.
    """

    weight: str = ""
    bias: str | None = None
    colsum: str | None = None
    dtype: str = "int8"
    acc_shift: int = 0
    relu: bool = False
    requant: Requant | None = None
    kind: ClassVar[str] = "gemm"

    @property
    def refs(self) -> tuple[str, ...]:
        names = [self.weight, self.bias, self.colsum]
        if self.requant is not None:
            names += [self.requant.multiplier, self.requant.shift]
        return tuple(n for n in names if n)


@dataclass(frozen=True)
class Vector(Op):
    """An element-wise op on the vector path (PL or AIE vector unit).

    ``fn`` is one of: add, sub, mul, relu, cast, quantize, dequantize, dynamic_quantize,
    qadd (add of two quantised tensors with requantisation). ``attrs`` holds the op's static
    parameters as a sorted tuple of (key, value) pairs.
    """

    fn: str = "add"
    attrs: tuple[tuple[str, object], ...] = ()
    kind: ClassVar[str] = "vector"

    def attr(self, key: str, default: object = None) -> object:
        return dict(self.attrs).get(key, default)


@dataclass(frozen=True)
class Reshape(Op):
    """A view: same data, new static shape (Reshape, Flatten)."""

    shape: tuple[int, ...] = ()
    kind: ClassVar[str] = "reshape"


class GraphInvariantError(AssertionError):
    """A KernelGraph invariant is broken: a bug in the frontend or a pass, never the user's input.

    It derives from AssertionError (the CLI reports it as an internal error) but is raised
    explicitly, so ``python -O`` does not turn the checks off.
    """


class KernelGraph:
    """Ops in topological order over named tensors, with their types and constant values.

    The ops form a doubly linked list with **use-lists** beside it (in the style of onnx-ir):
    for every tensor the op that produces it and the ops that read it as an input. Every
    mutation goes through :meth:`append`, :meth:`insert_before`, :meth:`insert_after`,
    :meth:`remove`, :meth:`replace`, :meth:`rename_uses` or the :attr:`ops` setter, each
    O(size of the ops touched), and keeps the use-lists exact; :meth:`producer` and
    :meth:`num_consumers` are then O(1) and :meth:`consumers` O(uses), so a pass that looks at
    each op's neighbours is linear in the graph. :attr:`ops` is a read-only tuple (cached until
    the next mutation).

    Ops are identified by object identity, not by value: two equal frozen ops are two ops. The
    list and the use-lists are plain dicts keyed by ``id(op)`` and tensor name, holding the ops
    themselves (no per-op container objects: a 200k-op graph is not 800k objects for the
    garbage collector to walk).

    Invariants (checked by :meth:`validate`): every op input is a graph input, a constant or the
    output of an earlier op; every tensor is defined once; every tensor has a type; graph
    outputs are defined; constants an op reads through its parameters exist; the use-lists
    equal the ones recomputed from the op list.
    """

    def __init__(
        self,
        inputs: Iterable[str],
        outputs: Iterable[str],
        ops: Iterable[Op] = (),
        types: dict[str, TensorType] | None = None,
        constants: dict[str, np.ndarray] | None = None,
        reserved: Iterable[str] = (),
    ) -> None:
        self.inputs: list[str] = list(inputs)
        self.outputs: list[str] = list(outputs)
        self.types: dict[str, TensorType] = {} if types is None else types
        self.constants: dict[str, np.ndarray] = {} if constants is None else constants
        #: Names a new tensor must not take (every tensor name of the source model, and every
        #: name :meth:`fresh_name` gave out). It only grows.
        self.reserved: set[str] = set(reserved)
        self._fresh: dict[str, int] = {}  # base -> suffixes below it are all reserved
        self._clear()
        for op in ops:
            self.append(op)

    def _clear(self) -> None:
        # The list: id(op) -> op, and id -> id of the next / previous op; key 0 (no object has
        # id 0) is the sentinel: _next[0] is the first op, _prev[0] the last.
        self._op: dict[int, Op] = {}
        self._next: dict[int, int] = {0: 0}
        self._prev: dict[int, int] = {0: 0}
        # tensor -> its producer; a second producer of a tensor exists only inside a rewrite
        # (a new op takes over an old one's output before the old one leaves) and waits here
        self._producer: dict[str, Op] = {}
        self._more_producers: dict[str, list[Op]] = {}
        # tensor -> its one user, or {id(op): op} of its users in the order they were added
        self._users: dict[str, Op | dict[int, Op]] = {}
        self._snapshot: tuple[Op, ...] | None = ()
        self._new_producer: set[str] = set()
        self._fewer_uses: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"KernelGraph(inputs={self.inputs!r}, outputs={self.outputs!r}, "
            f"{len(self._op)} ops, {len(self.constants)} constants)"
        )

    # -- the op list ------------------------------------------------------------------------------

    @property
    def ops(self) -> tuple[Op, ...]:
        """The ops in topological order (a snapshot: mutate through the graph's methods)."""
        if self._snapshot is None:
            ops, nxt, key = [], self._next, self._next[0]
            while key:
                ops.append(self._op[key])
                key = nxt[key]
            self._snapshot = tuple(ops)
        return self._snapshot

    @ops.setter
    def ops(self, ops: Iterable[Op]) -> None:
        self._clear()
        for op in ops:
            self.append(op)

    def __contains__(self, op: object) -> bool:
        return self._op.get(id(op)) is op

    def num_ops(self) -> int:
        return len(self._op)

    def append(self, op: Op) -> None:
        """Add ``op`` at the end of the op list."""
        self._insert(0, op)

    def insert_before(self, anchor: Op, ops: Iterable[Op]) -> None:
        """Insert ``ops`` (in order) right before ``anchor``."""
        where = self._key(anchor)
        for op in ops:
            self._insert(where, op)

    def insert_after(self, anchor: Op, ops: Iterable[Op]) -> None:
        """Insert ``ops`` (in order) right after ``anchor``."""
        where = self._next[self._key(anchor)]
        for op in ops:
            self._insert(where, op)

    def remove(self, op: Op) -> None:
        """Remove ``op`` from the graph; its outputs lose their producer."""
        key = self._key(op)
        prev, nxt = self._prev.pop(key), self._next.pop(key)
        self._next[prev], self._prev[nxt] = nxt, prev
        del self._op[key]
        for t in op.outputs:
            if t:
                self._drop_producer(t, op)
                self._new_producer.add(t)
        for t in op.inputs:
            if t and self._drop_user(t, op, key):
                self._fewer_uses.add(t)
        self._snapshot = None

    def replace(self, old: Op, new: Op | Iterable[Op] | None) -> None:
        """Put ``new`` (one op, several in order, or nothing) in the place of ``old``.

        The new ops may produce ``old``'s outputs: they are registered before ``old`` leaves.
        """
        ops = () if new is None else (new,) if isinstance(new, Op) else tuple(new)
        self.insert_before(old, ops)
        self.remove(old)

    def rename_uses(self, old: str, new: str) -> int:
        """Make every op that reads tensor ``old`` read ``new`` instead, and the graph outputs
        too (onnx-ir's ``replace_all_uses_with``); return how many ops changed.

        Only op inputs are renamed: constants an op reads through its parameters (a GEMM's
        weight) are not uses.
        """
        users = self.consumers(old)
        for op in users:
            inputs = tuple(new if t == old else t for t in op.inputs)
            self.replace(op, dataclasses.replace(op, inputs=inputs))
        self.outputs = [new if t == old else t for t in self.outputs]
        return len(users)

    def _key(self, op: Op) -> int:
        key = id(op)
        if self._op.get(key) is not op:
            raise GraphInvariantError(f"op {op.name!r} is not in the graph")
        return key

    def _insert(self, where: int, op: Op) -> None:
        """Link ``op`` before the op with key ``where`` (0: at the end) and register its uses."""
        key = id(op)
        if key in self._op:
            raise GraphInvariantError(f"op {op.name!r} is already in the graph")
        prev = self._prev[where]
        self._op[key] = op
        self._prev[key], self._next[key] = prev, where
        self._next[prev] = self._prev[where] = key
        for t in op.outputs:
            if t:
                if t in self._producer:
                    self._more_producers.setdefault(t, []).append(op)
                else:
                    self._producer[t] = op
                self._new_producer.add(t)
        for t in op.inputs:
            if t:
                users = self._users.get(t)
                if users is None:
                    self._users[t] = op
                elif isinstance(users, dict):
                    users[key] = op
                elif users is not op:
                    self._users[t] = {id(users): users, key: op}
        self._snapshot = None

    def _drop_producer(self, t: str, op: Op) -> None:
        more = self._more_producers.get(t)
        if self._producer.get(t) is op:
            if more:
                self._producer[t] = more.pop(0)
            else:
                del self._producer[t]
        elif more is not None:
            del more[next(i for i, p in enumerate(more) if p is op)]  # by identity, not value
        if more is not None and not more:
            del self._more_producers[t]

    def _drop_user(self, t: str, op: Op, key: int) -> bool:
        """Forget that ``op`` reads ``t``; whether it was still listed (an op may read a tensor
        twice)."""
        users = self._users.get(t)
        if users is op:
            del self._users[t]
            return True
        if isinstance(users, dict) and key in users:
            del users[key]
            if len(users) == 1:
                (self._users[t],) = users.values()
            return True
        return False

    # -- use-lists --------------------------------------------------------------------------------

    def producer(self, tensor: str) -> Op | None:
        """The op that produces ``tensor`` (None for graph inputs, constants, unknown names)."""
        return self._producer.get(tensor)

    def consumers(self, tensor: str) -> list[Op]:
        """The ops that read ``tensor`` as an input, each once, in the order they were added."""
        users = self._users.get(tensor)
        if users is None:
            return []
        return list(users.values()) if isinstance(users, dict) else [users]

    def num_consumers(self, tensor: str) -> int:
        """How many ops read ``tensor`` as an input, in O(1)."""
        users = self._users.get(tensor)
        if users is None:
            return 0
        return len(users) if isinstance(users, dict) else 1

    def pop_changes(self) -> tuple[set[str], set[str]]:
        """Tensors whose producer changed and tensors that lost a use since the last call.

        A rewrite driver revisits the consumers of the first and the last user of the second
        (a rule may match once a tensor has a single user), instead of sweeping the graph.
        """
        changes = self._new_producer, self._fewer_uses
        self._new_producer, self._fewer_uses = set(), set()
        return changes

    # -- tensors ----------------------------------------------------------------------------------

    def fresh_name(self, base: str) -> str:
        """A tensor name not used in the graph or the source model: ``base``, else the first
        free of ``base_1``, ``base_2``, ...; the name is reserved from then on."""
        # Names in ``reserved`` stay reserved (it only grows), so the run of reserved suffixes
        # found for ``base`` is skipped next time: a thousand unnamed nodes asking for the same
        # base cost linear time, not quadratic, and get the same names as a search from 0.
        i = self._fresh.get(base, 0)
        while _suffixed(base, i) in self.reserved:
            i += 1
        self._fresh[base] = i
        name = _suffixed(base, i)
        while name in self.constants or name in self.types or name in self.reserved:
            i += 1
            name = _suffixed(base, i)
        self.reserved.add(name)
        return name

    def is_graph_output(self, tensor: str) -> bool:
        return tensor in self.outputs

    def is_const(self, tensor: str) -> bool:
        return tensor in self.constants

    def const(self, tensor: str) -> np.ndarray:
        return self.constants[tensor]

    def add_const(self, name: str, value: np.ndarray) -> str:
        """Add a constant, making the name unique; return the name used."""
        name = self.fresh_name(name)
        self.constants[name] = value
        self.types[name] = TensorType(tuple(value.shape), _dtype_name(value.dtype))
        return name

    def of_kind(self, kind: str) -> Iterator[Op]:
        return (op for op in self.ops if op.kind == kind)

    # -- checks and cleanup -----------------------------------------------------------------------

    def validate(self) -> None:
        """Raise :class:`GraphInvariantError` if an invariant is broken (a bug, not user input)."""
        known = set(self.inputs) | set(self.constants)
        produced = uses = 0
        for op in self.ops:
            for t in op.refs:
                if t not in self.constants:
                    raise GraphInvariantError(f"{op.name}: constant {t} is missing")
            for i, t in enumerate(op.inputs):
                if not t:
                    continue
                if t not in known:
                    raise GraphInvariantError(f"{op.name}: input {t} used before it is defined")
                if t in op.inputs[:i]:
                    continue  # a second read of the same tensor is the same use
                uses += 1
                users = self._users.get(t)
                if not (users is op or isinstance(users, dict) and users.get(id(op)) is op):
                    raise GraphInvariantError(f"the use-list of tensor {t} is stale")
            for t in op.outputs:
                if not t:
                    continue
                if t in known:
                    raise GraphInvariantError(f"{op.name}: output {t} is already defined")
                produced += 1
                if self._producer.get(t) is not op:
                    raise GraphInvariantError(f"the producer of tensor {t} is stale")
            known.update(op.outputs)
        # every op's entries are there; now nothing else may be (a removed op, a stale name)
        if len(self._op) != len(self.ops) or len(self._next) != len(self.ops) + 1:
            raise GraphInvariantError(f"{len(self._op)} ops are indexed, {len(self.ops)} listed")
        if self._more_producers:
            raise GraphInvariantError(f"tensor {min(self._more_producers)} has two producers")
        if len(self._producer) != produced:
            bad = min(t for t, p in self._producer.items() if p not in self or t not in p.outputs)
            raise GraphInvariantError(f"the producer of tensor {bad} is stale")
        listed = sum(len(u) if isinstance(u, dict) else 1 for u in self._users.values())
        if listed != uses:
            bad = min(
                t
                for t in self._users
                if any(p not in self or t not in p.inputs for p in self.consumers(t))
            )
            raise GraphInvariantError(f"the use-list of tensor {bad} is stale")
        for t in self.outputs:
            if t not in known:
                raise GraphInvariantError(f"graph output {t} is not produced")
        for t in known:
            if t not in self.types:
                raise GraphInvariantError(f"tensor {t} has no type")

    def prune(self) -> bool:
        """Drop ops whose outputs nobody uses and constants nobody reads; return whether any
        op or constant went."""
        live = set(self.outputs)
        kept: set[int] = set()
        ops = self.ops
        for op in reversed(ops):
            if any(o in live for o in op.outputs):
                kept.add(id(op))
                live.update(i for i in op.inputs if i)
                live.update(op.refs)
        dropped = [op for op in ops if id(op) not in kept]
        for op in dropped:
            self.remove(op)
        for op in self.ops:  # an op kept for one output still defines the others
            live.update(op.outputs)
        n_constants = len(self.constants)
        self.constants = {k: v for k, v in self.constants.items() if k in live}
        io = {*self.inputs, *self.outputs}
        self.types = {k: v for k, v in self.types.items() if k in live or k in io}
        return bool(dropped) or len(self.constants) != n_constants


def _suffixed(base: str, i: int) -> str:
    return base if i == 0 else f"{base}_{i}"


def _dtype_name(dt: np.dtype) -> str:
    for name, np_t in _NUMPY.items():
        if np.dtype(np_t) == dt and name not in ("int4", "uint4"):
            return name
    if dt == np.float64:
        return "float32"
    raise ValueError(f"unsupported constant dtype {dt}")


__all__ = [
    "DTYPES",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "Gemm",
    "GraphInvariantError",
    "KernelGraph",
    "MatMul",
    "MatMulInteger",
    "Op",
    "QuantizeLinear",
    "Requant",
    "Reshape",
    "TensorType",
    "Vector",
    "numpy_dtype",
]
