"""The function tables of the nonlinear kinds, on top of :mod:`codesign.sim.numerics.nonlinear`.

:data:`ELEMENTWISE` holds the element-wise functions of the ``nonlinear`` kind
(:mod:`codesign.kinds.nonlinear`), :data:`ROWWISE` the functions over the last axis of the
``rownorm`` kind (:mod:`codesign.kinds.rownorm`). :func:`apply` is what the functional simulator
runs for such a layer and what constant folding runs at compile time, so both compute the same
numbers. Boolean tensors (ONNX ``bool``) are held as uint8 0/1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from codesign.sim.numerics import nonlinear as nl

_Impl = Callable[[Sequence[np.ndarray], dict], np.ndarray]

#: Constant exponents of Pow and the exact fp32 form each one runs as.
POW_EXPONENTS = (-1.0, -0.5, 0.5, 1.0, 2.0, 3.0)


def _float(fn: Callable[[np.ndarray], np.ndarray]) -> _Impl:
    return lambda xs, attrs: fn(np.asarray(xs[0], np.float32))


def _pow(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(xs[0], np.float32)
    p = float(np.asarray(xs[1]).reshape(-1)[0])
    with np.errstate(all="ignore"):
        if p == 2.0:
            return x * x
        if p == 3.0:
            return x * x * x
        if p == 1.0:
            return x.copy()
        if p == 0.5:
            return nl.sqrt_f32(x)
        if p == -0.5:
            return nl.rsqrt_f32(x)
        if p == -1.0:
            return nl.reciprocal_f32(x)
    raise ValueError(f"pow exponent must be one of {POW_EXPONENTS}, not {p}")


def _neg(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(xs[0])
    if np.issubdtype(x.dtype, np.integer):
        return (-x.astype(np.int64)).astype(x.dtype)  # two's complement wrap, as ONNX Neg
    return np.negative(x)


def _where(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    c, a, b = xs
    return np.where(np.asarray(c) != 0, a, b).astype(np.result_type(a, b), copy=False)


def _equal(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    return (np.asarray(xs[0]) == np.asarray(xs[1])).astype(np.uint8)


def _expand(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    shape = tuple(int(d) for d in attrs["shape"])
    return np.ascontiguousarray(np.broadcast_to(xs[0], np.broadcast_shapes(xs[0].shape, shape)))


@dataclass(frozen=True)
class Function:
    """One function of a nonlinear kind: its inputs (``arity``: required, ``optional``: how
    many more may follow), whether its inputs broadcast, whether it needs float32 inputs, its
    fp32 operations per element (the cost model's figure) and what it computes."""

    arity: int
    run: _Impl
    ops: int
    broadcasts: bool = False
    floats: bool = True
    optional: int = 0


#: The element-wise functions of the ``nonlinear`` kind.
ELEMENTWISE: dict[str, Function] = {
    "exp": Function(1, _float(nl.exp_f32), nl.OPS_PER_ELEMENT["exp"]),
    "erf": Function(1, _float(nl.erf_f32), nl.OPS_PER_ELEMENT["erf"]),
    "tanh": Function(1, _float(nl.tanh_f32), nl.OPS_PER_ELEMENT["tanh"]),
    "sigmoid": Function(1, _float(nl.sigmoid_f32), nl.OPS_PER_ELEMENT["sigmoid"]),
    "sqrt": Function(1, _float(nl.sqrt_f32), nl.OPS_PER_ELEMENT["sqrt"]),
    "reciprocal": Function(1, _float(nl.reciprocal_f32), nl.OPS_PER_ELEMENT["reciprocal"]),
    "silu": Function(1, _float(nl.silu_f32), nl.OPS_PER_ELEMENT["silu"]),
    "gelu": Function(
        1,
        lambda xs, a: nl.gelu_f32(np.asarray(xs[0], np.float32), str(a.get("approximate", "none"))),
        nl.OPS_PER_ELEMENT["gelu"],
    ),
    "div": Function(
        2,
        lambda xs, a: nl.div_f32(xs[0], xs[1]),
        nl.OPS_PER_ELEMENT["div"],
        broadcasts=True,
    ),
    "pow": Function(2, _pow, 3, broadcasts=True),
    "neg": Function(1, _neg, 1, floats=False),
    "not": Function(1, lambda xs, a: (np.asarray(xs[0]) == 0).astype(np.uint8), 1, floats=False),
    "nonzero": Function(
        1, lambda xs, a: (np.asarray(xs[0]) != 0).astype(np.uint8), 1, floats=False
    ),
    "equal": Function(2, _equal, 1, broadcasts=True, floats=False),
    "where": Function(3, _where, 1, broadcasts=True, floats=False),
    "expand": Function(1, _expand, 0, broadcasts=True, floats=False),
}


def _softmax(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    return nl.softmax_f32(xs[0])


def _layernorm(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    gamma = xs[1] if len(xs) > 1 else None
    beta = xs[2] if len(xs) > 2 else None
    return nl.layernorm_f32(xs[0], gamma, beta, float(attrs["epsilon"]))


def _rmsnorm(xs: Sequence[np.ndarray], attrs: dict) -> np.ndarray:
    gamma = xs[1] if len(xs) > 1 else None
    return nl.rmsnorm_f32(xs[0], gamma, float(attrs["epsilon"]))


#: The functions over the last axis of the ``rownorm`` kind; ``ops`` counts per element
#: (the row's reductions, the element-wise steps and, per row, the reciprocal/rsqrt spread
#: over the row are left out: one per row).
ROWWISE: dict[str, Function] = {
    "softmax": Function(1, _softmax, nl.OPS_PER_ELEMENT["exp"] + 4),
    "layernorm": Function(1, _layernorm, 8, optional=2),
    "rmsnorm": Function(1, _rmsnorm, 5, optional=1),
    "reducemean": Function(1, lambda xs, a: nl.row_mean_f32(xs[0]), 1),
}


def apply(
    table: dict[str, Function], fn: str, inputs: Sequence[np.ndarray], attrs: dict
) -> np.ndarray:
    """Run ``fn`` of ``table`` on ``inputs``; KeyError for an unknown fn (a bug)."""
    with np.errstate(all="ignore"):  # IEEE overflow to inf/NaN is what the hardware does
        return table[fn].run(inputs, attrs)
