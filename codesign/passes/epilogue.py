"""GEMM epilogues: the rules that fold what follows a GEMM into it, on the accumulator.

Patterns (Gemm_int: integer GEMM, s: its accumulator scale):

- ``Add(DQ(Gemm_int, s, 0), c)``     ->  ``DQ(Gemm_int + round(c / s), s, 0)``
- ``Relu(DQ(Gemm_int, s, 0))``       ->  ``DQ(Gemm_int with ReLU, s, 0)``
- ``Q(DQ(Gemm_int, s, 0), sy, zy)``  ->  ``Gemm_int requantised by s / sy, zy``
- ``Add(Gemm_bf16, c)``, ``Relu(Gemm_bf16)``  ->  bias / ReLU folded into the bf16 GEMM
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from codesign.ir.graph import (
    DequantizeLinear,
    Gemm,
    KernelGraph,
    Op,
    QuantizeLinear,
    Requant,
    Vector,
)
from codesign.passes.base import RewritePass, Rule
from codesign.passes.match import _sole_consumer, _swap
from codesign.passes.quant import _acc_constant
from codesign.sim import numerics


def _acc_bound(kg: KernelGraph, gemm: Gemm) -> int:
    """An upper bound of |accumulator| of an integer GEMM, from its operand ranges."""
    w = kg.const(gemm.weight).astype(np.int64)
    lo, hi = numerics.int_range(kg.types[gemm.inputs[0]].dtype)
    amax = max(abs(lo), abs(hi))
    bound = int(np.abs(w).sum(axis=0).max(initial=0)) * amax
    if gemm.bias:
        bound += int(np.abs(kg.const(gemm.bias).astype(np.int64)).max(initial=0))
    if gemm.colsum:
        bound += 255 * int(np.abs(kg.const(gemm.colsum).astype(np.int64)).max(initial=0))
    return bound


def _int_gemm_behind_dq(
    kg: KernelGraph, tensor: str
) -> tuple[DequantizeLinear, Gemm, np.ndarray] | None:
    """If ``tensor`` is DQ(acc, s, 0) of an integer GEMM used only there, return (dq, gemm, s)."""
    dq = kg.producer(tensor)
    if not isinstance(dq, DequantizeLinear):
        return None
    acc, s, z = dq.inputs
    gemm = kg.producer(acc)
    if not (isinstance(gemm, Gemm) and gemm.dtype != "bf16" and gemm.requant is None):
        return None
    if _sole_consumer(kg, acc) is not dq or not kg.is_const(s) or not kg.is_const(z):
        return None
    if np.any(kg.const(z) != 0):
        return None
    return dq, gemm, kg.const(s)


def _bias_vector(kg: KernelGraph, name: str, n: int) -> np.ndarray | None:
    """A constant broadcastable as a per-channel bias [N], as a 1-D float array, else None."""
    if not kg.is_const(name):
        return None
    c = kg.const(name)
    if (
        c.size not in (1, n)
        or (c.ndim and c.shape[-1] not in (1, n))
        or any(d != 1 for d in c.shape[:-1])
    ):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (n,))


def fold_bias(kg: KernelGraph, op: Op) -> bool:
    """``Add(GEMM output, constant [N])`` -> the GEMM's bias."""
    if not (isinstance(op, Vector) and op.fn == "add" and len(op.inputs) == 2):
        return False
    for t, c in (op.inputs, op.inputs[::-1]):
        if _sole_consumer(kg, t) is not op:
            continue
        found = _int_gemm_behind_dq(kg, t)
        if found is not None:
            dq, gemm, s = found
            if gemm.relu:
                continue
            n = kg.const(gemm.weight).shape[1]
            bias_f = _bias_vector(kg, c, n)
            if bias_f is None:
                continue
            s64 = np.broadcast_to(s.astype(np.float64).reshape(-1), (n,))
            with np.errstate(all="ignore"):
                steps = np.rint(bias_f / s64)
            limit = 2.0 ** (numerics.ACCUMULATOR_BITS[gemm.dtype] - 1)
            if not np.all(np.abs(steps) < limit):
                continue  # not representable in the accumulator: keep the float Add
            add = steps.astype(np.int64)
            old = kg.const(gemm.bias).astype(np.int64) if gemm.bias else 0
            bias = kg.add_const(f"{gemm.name}/bias", _acc_constant(old + add, gemm.dtype))
            _swap(kg, gemm, replace(gemm, bias=bias))
            _swap(kg, dq, replace(dq, outputs=op.outputs))
            _swap(kg, op, None)
            return True
        gemm = kg.producer(t)
        if isinstance(gemm, Gemm) and gemm.dtype == "bf16" and not gemm.relu:
            n = kg.const(gemm.weight).shape[1]
            bias_f = _bias_vector(kg, c, n)
            if bias_f is None:
                continue
            old = kg.const(gemm.bias).astype(np.float32) if gemm.bias else np.float32(0)
            bias = kg.add_const(
                f"{gemm.name}/bias", (old + bias_f.astype(np.float32)).astype(np.float32)
            )
            _swap(kg, gemm, replace(gemm, bias=bias, outputs=op.outputs))
            _swap(kg, op, None)
            return True
    return False


def fold_relu(kg: KernelGraph, op: Op) -> bool:
    """``Relu(GEMM output)`` -> the GEMM's ReLU (on the accumulator)."""
    if not (isinstance(op, Vector) and op.fn == "relu"):
        return False
    t = op.inputs[0]
    if _sole_consumer(kg, t) is not op:
        return False
    found = _int_gemm_behind_dq(kg, t)
    if found is not None:
        dq, gemm, _ = found
        _swap(kg, gemm, replace(gemm, relu=True))
        _swap(kg, dq, replace(dq, outputs=op.outputs))
        _swap(kg, op, None)
        return True
    gemm = kg.producer(t)
    if isinstance(gemm, Gemm) and gemm.dtype == "bf16":
        _swap(kg, gemm, replace(gemm, relu=True, outputs=op.outputs))
        _swap(kg, op, None)
        return True
    return False


def fold_requant(kg: KernelGraph, op: Op) -> bool:
    """``Q(DQ(acc, s, 0), sy, zy)`` -> the GEMM requantises by ``s / sy`` to ``zy``."""
    if not isinstance(op, QuantizeLinear):
        return False
    t, sy, zy = op.inputs
    if _sole_consumer(kg, t) is not op or not (kg.is_const(sy) and kg.is_const(zy)):
        return False
    if (
        kg.const(sy).size != 1
        or kg.const(zy).size != 1
        or op.dtype not in ("int8", "uint8", "int16")
    ):
        return False
    found = _int_gemm_behind_dq(kg, t)
    if found is None:
        return False
    dq, gemm, s = found
    n = kg.const(gemm.weight).shape[1]
    acc_shift = (
        0
        if numerics.ACCUMULATOR_BITS[gemm.dtype] == 32
        else numerics.acc_preshift(_acc_bound(kg, gemm))
    )
    real = (
        np.broadcast_to(s.astype(np.float64).reshape(-1), (n,))
        * 2.0**acc_shift
        / float(kg.const(sy).reshape(-1)[0])
    )
    try:
        mult, shift = numerics.quantize_multiplier(real)
    except ValueError:
        return False
    if np.all(mult == mult[0]) and np.all(shift == shift[0]):
        mult, shift = mult[:1], shift[:1]
    requant = Requant(
        multiplier=kg.add_const(f"{gemm.name}/multiplier", mult.astype(np.int32)),
        shift=kg.add_const(f"{gemm.name}/shift", shift.astype(np.int32)),
        zero_point=int(kg.const(zy).reshape(-1)[0]),
        dtype=op.dtype,
    )
    _swap(kg, gemm, replace(gemm, requant=requant, acc_shift=acc_shift, outputs=op.outputs))
    _swap(kg, dq, None)
    _swap(kg, op, None)
    return True


@dataclass(frozen=True)
class FoldEpilogue(RewritePass):
    """Bias, ReLU and requantisation after a GEMM -> the GEMM's epilogue. Options turn each
    rule off."""

    name: ClassVar[str] = "fold-epilogue"
    bias: bool = True
    relu: bool = True
    requant: bool = True

    def rules(self) -> tuple[Rule, ...]:
        on = ((fold_bias, self.bias), (fold_relu, self.relu), (fold_requant, self.requant))
        return tuple(rule for rule, enabled in on if enabled)
