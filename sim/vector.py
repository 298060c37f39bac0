"""Element-wise ops of the vector path, defined on top of :mod:`codesign.sim.numerics`.

:func:`apply` is what the functional simulator runs for a vector layer and what constant folding
runs at compile time, so both compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from codesign.sim import numerics

_Impl = Callable[[Sequence[np.ndarray], dict], tuple[np.ndarray, ...]]


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> _Impl:
    def run(xs: Sequence[np.ndarray], attrs: dict) -> tuple[np.ndarray, ...]:
        a, b = xs
        out = fn(a, b)
        return (out.astype(np.result_type(a, b), copy=False),)

    return run


def _relu(xs: Sequence[np.ndarray], attrs: dict) -> tuple[np.ndarray, ...]:
    return (numerics.relu(xs[0]),)


def _cast(xs: Sequence[np.ndarray], attrs: dict) -> tuple[np.ndarray, ...]:
    from codesign.ir.graph import numpy_dtype

    to = str(attrs["to"])
    x = xs[0]
    if to == "bf16":
        return (numerics.to_bf16(x),)
    if np.issubdtype(numpy_dtype(to), np.integer) and np.issubdtype(x.dtype, np.floating):
        # ONNX Cast float -> int truncates towards zero (C semantics)
        x = np.trunc(x)
    if to in ("int4", "uint4"):
        # sub-byte targets wrap to their 4 bits (the onnx reference; a plain astype into the
        # int8/uint8 storage would keep out-of-range values)
        return (numerics.wrap(x, to),)
    return (x.astype(numpy_dtype(to)),)


def _quantize(xs: Sequence[np.ndarray], attrs: dict) -> tuple[np.ndarray, ...]:
    x, scale, zp = xs
    return (numerics.quantize_linear(x, scale, zp, str(attrs["dtype"]), attrs.get("axis")),)


def _dequantize(xs: Sequence[np.ndarray], attrs: dict) -> tuple[np.ndarray, ...]:
    x, scale, zp = xs
    return (numerics.dequantize_linear(x, scale, zp, attrs.get("axis")),)


def _dynamic_quantize(xs: Sequence[np.ndarray], attrs: dict) -> tuple[np.ndarray, ...]:
    q, s, z = numerics.dynamic_quantize_linear(xs[0])
    return q, np.asarray(s, dtype=np.float32), np.asarray(z, dtype=np.uint8)


@dataclass(frozen=True)
class VectorFn:
    """One element-wise function: how many inputs and outputs it has, and what it computes."""

    arity: int
    outputs: int
    run: _Impl
    #: the output shape is the inputs' broadcast shape (otherwise the first input's shape)
    broadcasts: bool = False


#: The one table of vector functions (the executor, constant folding and the plan checker use it).
FUNCTIONS: dict[str, VectorFn] = {
    "add": VectorFn(2, 1, _binary(np.add), broadcasts=True),
    "sub": VectorFn(2, 1, _binary(np.subtract), broadcasts=True),
    "mul": VectorFn(2, 1, _binary(np.multiply), broadcasts=True),
    "relu": VectorFn(1, 1, _relu),
    "cast": VectorFn(1, 1, _cast),
    "quantize": VectorFn(3, 1, _quantize),
    "dequantize": VectorFn(3, 1, _dequantize),
    "dynamic_quantize": VectorFn(1, 3, _dynamic_quantize),
}


def apply(
    fn: str, inputs: Sequence[np.ndarray], attrs: dict | None = None
) -> tuple[np.ndarray, ...]:
    """Run element-wise ``fn`` on ``inputs``; raise KeyError for an unknown fn (a bug)."""
    return FUNCTIONS[fn].run(inputs, attrs or {})
