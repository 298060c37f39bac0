"""The KernelGraph: a small typed graph of hardware-level ops.

The frontend lowers ONNX into a KernelGraph of *primitive* ops (one per ONNX node, with
QuantizeLinear/DequantizeLinear kept as explicit ops); the passes in :mod:`codesign.passes` rewrite
it into *hardware* ops (:class:`Gemm` on the AIE block, :class:`Vector` element-wise ops,
:class:`Reshape` views) that the schedulers map and the simulator executes.

Ops are frozen dataclasses; tensors are referred to by name. The graph holds the tensor types, the
constant values, and the ops in a topological order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass
class KernelGraph:
    """Ops in topological order over named tensors, with their types and constant values.

    Invariants (checked by :meth:`validate`): every op input is a graph input, a constant or the
    output of an earlier op; every tensor has a type; graph outputs are produced.
    """

    inputs: list[str]
    outputs: list[str]
    ops: list[Op] = field(default_factory=list)
    types: dict[str, TensorType] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    #: Names a new tensor must not take (every tensor name of the source model).
    reserved: set[str] = field(default_factory=set, repr=False)

    def fresh_name(self, base: str) -> str:
        """A tensor name not used in the graph or the source model, ``base`` if possible."""
        name, i = base, 0
        while name in self.constants or name in self.types or name in self.reserved:
            i += 1
            name = f"{base}_{i}"
        self.reserved.add(name)
        return name

    def producer(self, tensor: str) -> Op | None:
        for op in self.ops:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: str) -> list[Op]:
        users = [op for op in self.ops if tensor in op.inputs]
        return users

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

    def validate(self) -> None:
        """Raise AssertionError if an invariant is broken (a bug in a pass, not user input)."""
        known = set(self.inputs) | set(self.constants)
        for op in self.ops:
            for t in op.refs:
                assert t in self.constants, f"{op.name}: constant {t} is missing"
            for t in op.inputs:
                assert t == "" or t in known, f"{op.name}: input {t} used before it is defined"
            known.update(op.outputs)
        for t in self.outputs:
            assert t in known, f"graph output {t} is not produced"
        for t in known:
            assert t in self.types, f"tensor {t} has no type"

    def prune(self) -> None:
        """Drop ops whose outputs nobody uses and constants nobody reads."""
        live = set(self.outputs)
        kept: list[Op] = []
        for op in reversed(self.ops):
            if any(o in live for o in op.outputs):
                kept.append(op)
                live.update(i for i in op.inputs if i)
                live.update(op.refs)
        self.ops = kept[::-1]
        for op in kept:  # an op kept for one output still defines the others
            live.update(op.outputs)
        self.constants = {k: v for k, v in self.constants.items() if k in live}
        self.types = {
            k: v
            for k, v in self.types.items()
            if k in live or k in self.inputs or k in self.outputs
        }


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
