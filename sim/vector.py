"""Element-wise ops of the vector path, defined on top of :mod:`codesign.sim.numerics`.

:func:`apply` is what the functional simulator runs for a vector layer and what constant folding
runs at compile time, so both compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from codesign.sim import numerics

#: fn name -> (number of inputs or None for "at least one", implementation)
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


FUNCTIONS: dict[str, _Impl] = {
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "relu": _relu,
    "cast": _cast,
    "quantize": _quantize,
    "dequantize": _dequantize,
    "dynamic_quantize": _dynamic_quantize,
}


def apply(
    fn: str, inputs: Sequence[np.ndarray], attrs: dict | None = None
) -> tuple[np.ndarray, ...]:
    """Run element-wise ``fn`` on ``inputs``; raise KeyError for an unknown fn (a bug)."""
    return FUNCTIONS[fn](inputs, attrs or {})
