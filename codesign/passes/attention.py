"""Activation x activation products and the transposes around them.

Rules (x_q: integer tensor; Q/DQ per tensor with constant scalar scale and zero point):

- ``Q(move(DQ(x_q, s, z)), s, z)`` -> ``move(x_q)`` for a data movement ``move`` (Transpose,
  Reshape): dequantising and requantising with the same parameters is the identity on the
  integers (|x - z| <= 65535 and the float32 round trip is within half a step), which is what
  onnxruntime's quantize_static writes around a Transpose or Reshape.
- ``BatchedMatMul(DQ(a_q, sa, za), DQ(b_q, sb, zb))`` -> ``DQ(BatchedMatMul_int(a_q, b_q),
  sa*sb, 0)``: int8 mode when both are int8/uint8, int16 mode when one is int16 (or the int8
  accumulator could overflow); both zero points handled exactly by the kind.
- a BatchedMatMul operand produced by a Transpose reads the Transpose's input with the composed
  perm (head split, K^T: a read order, nothing rewritten in DDR);
- a Transpose of a BatchedMatMul's only output becomes its write order (head merge), moved up
  through the per-tensor Q/DQ between them first;
- a float32 BatchedMatMul left (not both operands quantized) runs in bf16, as a float weight GEMM.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codesign.errors import UnsupportedError
from codesign.ir.graph import (
    DequantizeLinear,
    KernelGraph,
    Op,
    QuantizeLinear,
    Reshape,
    TensorType,
)
from codesign.kinds.batched_matmul import BatchedMatMul, identity, operand_shapes
from codesign.kinds.transpose import Transpose, compose
from codesign.passes.base import Pass, PassResult, Rule, apply_rules
from codesign.passes.match import _sole_consumer
from codesign.sim import numerics

#: acc32 holds sum_k (a - za)(b - zb) of re-centred 8-bit operands exactly below this
_ACC32 = 2**31 - 1


def _scalar_const(kg: KernelGraph, name: str) -> np.ndarray | None:
    if not name or not kg.is_const(name):
        return None
    v = kg.const(name)
    return v if v.size == 1 else None


def _per_tensor(kg: KernelGraph, op: Op) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, zero point) of a per-tensor Q/DQ with constant scalar parameters, else None."""
    if not isinstance(op, QuantizeLinear | DequantizeLinear) or op.axis is not None:
        return None
    s, z = _scalar_const(kg, op.inputs[1]), _scalar_const(kg, op.inputs[2])
    if s is None or z is None:
        return None
    return s, z


def _drop_if_dead(kg: KernelGraph, op: Op | None) -> None:
    if (
        op is not None
        and op in kg
        and not any(kg.num_consumers(t) or kg.is_graph_output(t) for t in op.outputs if t)
    ):
        kg.remove(op)


def requant_identity(kg: KernelGraph, op: Op) -> bool:
    """``Q(move(DQ(x_q, s, z)), s, z)`` -> ``move(x_q)`` (same scale and zero point)."""
    q = _per_tensor(kg, op) if isinstance(op, QuantizeLinear) else None
    if q is None:
        return False
    move = kg.producer(op.inputs[0])
    if not isinstance(move, Transpose | Reshape) or _sole_consumer(kg, move.outputs[0]) is not op:
        return False
    dq = kg.producer(move.inputs[0])
    d = _per_tensor(kg, dq) if isinstance(dq, DequantizeLinear) else None
    if d is None or kg.types[dq.inputs[0]].dtype != op.dtype:
        return False
    same_scale = np.float32(q[0].reshape(-1)[0]) == np.float32(d[0].reshape(-1)[0])
    if not same_scale or int(q[1].reshape(-1)[0]) != int(d[1].reshape(-1)[0]):
        return False
    new = dataclasses.replace(move, inputs=(dq.inputs[0],), outputs=op.outputs)
    kg.replace(op, new)
    _drop_if_dead(kg, move)
    _drop_if_dead(kg, dq)
    return True


def absorb_input_transpose(kg: KernelGraph, op: Op) -> bool:
    """A BatchedMatMul operand made by a Transpose: read the Transpose's input, perm composed."""
    if not isinstance(op, BatchedMatMul):
        return False
    inputs, perms = list(op.inputs), [op.a_perm, op.b_perm]
    moved = []
    for i, name in enumerate(op.inputs):
        t = kg.producer(name)
        if isinstance(t, Transpose):
            rank = len(t.perm)
            inputs[i] = t.inputs[0]
            perms[i] = compose(t.perm, perms[i] or identity(rank))
            moved.append(t)
    if not moved:
        return False
    kg.replace(op, dataclasses.replace(op, inputs=tuple(inputs), a_perm=perms[0], b_perm=perms[1]))
    for t in moved:
        _drop_if_dead(kg, t)
    return True


def _leads_to_product(kg: KernelGraph, name: str) -> bool:
    """Whether ``name`` comes from a BatchedMatMul through per-tensor Q/DQ only, each tensor on
    the way read once."""
    while True:
        p = kg.producer(name)
        if p is None or kg.num_consumers(name) != 1 or kg.is_graph_output(name):
            return False
        if isinstance(p, BatchedMatMul):
            return True
        if _per_tensor(kg, p) is None:
            return False
        name = p.inputs[0]


def absorb_output_transpose(kg: KernelGraph, op: Op) -> bool:
    """A Transpose of a BatchedMatMul's only output becomes the product's write order; across
    per-tensor Q/DQ it first moves up one op (they act element by element)."""
    if not isinstance(op, Transpose) or not _leads_to_product(kg, op.inputs[0]):
        return False
    p = kg.producer(op.inputs[0])
    if isinstance(p, BatchedMatMul):
        rank = len(op.perm)
        perm = compose(p.out_perm or identity(rank), op.perm)
        kg.replace(op, dataclasses.replace(p, outputs=op.outputs, out_perm=perm))
        kg.remove(p)
        return True
    x = p.inputs[0]
    tx = kg.types[x]
    moved = kg.fresh_name(f"{op.outputs[0]}/pre")
    kg.types[moved] = TensorType(tuple(tx.shape[i] for i in op.perm), tx.dtype)
    t2 = dataclasses.replace(op, inputs=(x,), outputs=(moved,))
    p2 = dataclasses.replace(p, inputs=(moved, *p.inputs[1:]), outputs=op.outputs)
    kg.replace(op, (t2, p2))
    kg.remove(p)
    return True


def _int_mode(a_dtype: str, b_dtype: str, K: int, za: int, zb: int) -> str | None:
    modes = numerics.BATCHED_INT_MODES
    if a_dtype not in modes or b_dtype not in modes:
        return None
    if modes[a_dtype] == modes[b_dtype] == "int8":
        lo_a, hi_a = numerics.int_range(a_dtype)
        lo_b, hi_b = numerics.int_range(b_dtype)
        span = max(abs(lo_a - za), abs(hi_a - za)) * max(abs(lo_b - zb), abs(hi_b - zb))
        return "int8" if span * K <= _ACC32 else "int16"
    return "int16"


def fold_qdq_product(kg: KernelGraph, op: Op) -> bool:
    """``BatchedMatMul(DQ(a_q), DQ(b_q))`` per tensor -> integer product + DQ(acc, sa*sb)."""
    if not (isinstance(op, BatchedMatMul) and op.dtype == "float32"):
        return False
    dqs = [kg.producer(n) for n in op.inputs]
    params = [_per_tensor(kg, d) if isinstance(d, DequantizeLinear) else None for d in dqs]
    if any(p is None for p in params):
        return False
    (sa, za), (sb, zb) = params
    a, b = dqs[0].inputs[0], dqs[1].inputs[0]
    ta, tb = kg.types[a], kg.types[b]
    _, _, K, _ = operand_shapes(ta.shape, tb.shape, op.a_perm, op.b_perm)
    za_i, zb_i = int(za.reshape(-1)[0]), int(zb.reshape(-1)[0])
    mode = _int_mode(ta.dtype, tb.dtype, K, za_i, zb_i)
    if mode is None:
        raise UnsupportedError(
            f"node {op.name!r}: a product of quantized activations {a!r} ({ta.dtype}) and "
            f"{b!r} ({tb.dtype}) has no exact AIE-ML integer mode; quantize activations to "
            "int8, uint8 or int16"
        )
    with np.errstate(all="ignore"):
        scale = np.float32(sa.reshape(-1)[0]) * np.float32(sb.reshape(-1)[0])
    if not (np.isfinite(scale) and scale >= np.finfo(np.float32).tiny):
        raise UnsupportedError(
            f"node {op.name!r}: the product of the scales of {a!r} and {b!r} ({float(scale):.3g})"
            " leaves the normal float32 range; use scales whose product stays >= 1.2e-38"
        )
    acc = kg.fresh_name(f"{op.outputs[0]}/acc")
    kg.types[acc] = TensorType(kg.types[op.outputs[0]].shape, "int32")
    product = dataclasses.replace(
        op, inputs=(a, b), outputs=(acc,), dtype=mode, a_zero_point=za_i, b_zero_point=zb_i
    )
    scale_name = kg.add_const(f"{op.name}/acc_scale", np.asarray(scale, np.float32).reshape(()))
    zero = kg.add_const(f"{op.name}/acc_zero", np.zeros((), dtype=np.int32))
    dq = DequantizeLinear(f"{op.name}/dq_acc", (acc, scale_name, zero), op.outputs)
    kg.replace(op, (product, dq))
    for d in dqs:
        _drop_if_dead(kg, d)
    return True


def float_product(kg: KernelGraph, op: Op) -> bool:
    """A float32 BatchedMatMul (operands not both quantized) -> bf16."""
    if not (isinstance(op, BatchedMatMul) and op.dtype == "float32"):
        return False
    kg.replace(op, dataclasses.replace(op, dtype="bf16"))
    return True


@dataclass(frozen=True)
class AttentionProducts(Pass):
    """Map activation x activation products (int8/int16 when both operands are quantized, bf16
    otherwise) and fold the transposes around them into their read and write orders."""

    name: ClassVar[str] = "attention-products"

    def rules(self) -> tuple[Rule, ...]:
        return (requant_identity, absorb_input_transpose, fold_qdq_product, absorb_output_transpose)

    def call(self, kg: KernelGraph) -> PassResult:
        changed = apply_rules(kg, self.rules())
        # only once every quantized form had its chance: the rest is float
        changed += apply_rules(kg, (float_product,))
        return PassResult(changed > 0)
