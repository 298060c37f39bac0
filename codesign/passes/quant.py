"""Quantised GEMMs to integer GEMMs: the rules that turn a QDQ MatMul or a MatMulInteger into
an integer :class:`Gemm` on the AIE-ML block (int8 or int16 mmul mode), exactly.

Patterns (x_q: integer tensor, W: integer constant, s*: scales):

- ``MatMul(DQ(x_q, sx, zx), DQ(W, sw, zw))``  ->  ``DQ(Gemm_int(x_q; W - zw), sx*sw, 0)``
- ``MatMulInteger(x_q, W, zx, zw)``            ->  ``Gemm_int(x_q[, zx]; W - zw)``
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from codesign.ir.graph import (
    DequantizeLinear,
    Gemm,
    KernelGraph,
    MatMul,
    MatMulInteger,
    Op,
    TensorType,
)
from codesign.passes.base import RewritePass, Rule
from codesign.passes.match import _swap
from codesign.sim import numerics


def _scalar(kg: KernelGraph, name: str) -> np.ndarray | None:
    if not kg.is_const(name):
        return None
    return kg.const(name)


def _int_dtype_for(values: np.ndarray) -> str:
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for dtype in ("int8", "int16"):
        a, b = numerics.int_range(dtype)
        if a <= lo and hi <= b:
            return dtype
    return "int32"


def _gemm_dtype(a_dtype: str, w_shifted: np.ndarray) -> str | None:
    """The AIE-ML mmul mode for these operands, or None when none can hold them."""
    w_dtype = _int_dtype_for(w_shifted)
    if a_dtype in ("int8", "uint8", "int4", "uint4") and w_dtype == "int8":
        return "int8"
    if a_dtype in ("int8", "uint8", "int16", "int4", "uint4") and w_dtype in ("int8", "int16"):
        return "int16"
    return None


def _acc_constant(values: np.ndarray, dtype: str) -> np.ndarray:
    """A bias in the accumulator's width: wrapped int32 for acc32, int64 for acc64."""
    if numerics.ACCUMULATOR_BITS[dtype] == 32:
        return numerics.wrap_int32(values)
    return np.asarray(values, dtype=np.int64)


def _shift_weight(w: np.ndarray, zw: np.ndarray, axis: int | None) -> np.ndarray:
    zw = np.asarray(zw, dtype=np.int64)
    if zw.ndim == 1 and zw.size > 1:
        zw = zw.reshape((1, -1)) if axis in (1, -1) else zw.reshape((-1, 1))
    return w.astype(np.int64) - zw


def _make_int_gemm(
    kg: KernelGraph,
    op: Op,
    a: str,
    w: np.ndarray,
    zw: np.ndarray,
    w_axis: int | None,
    a_zero_point: np.ndarray | str,
    out: str,
) -> Gemm | None:
    if w.ndim != 2 or (w_axis not in (None, 1, -1) and np.asarray(zw).size > 1):
        return None
    w_shifted = _shift_weight(w, zw, w_axis)
    dtype = _gemm_dtype(kg.types[a].dtype, w_shifted)
    if dtype is None:
        return None
    wd = np.dtype(np.int8 if dtype == "int8" else np.int16)
    weight = kg.add_const(f"{op.name}/weight", w_shifted.astype(wd))
    colsum = w_shifted.sum(axis=0)
    inputs: tuple[str, ...] = (a,)
    bias = colsum_name = None
    if isinstance(a_zero_point, str):
        inputs = (a, a_zero_point)
        colsum_name = kg.add_const(f"{op.name}/colsum", colsum.astype(np.int32))
    else:
        za = int(np.asarray(a_zero_point).reshape(-1)[0])
        if za:
            bias = kg.add_const(f"{op.name}/bias", _acc_constant(-za * colsum, dtype))
    kg.types[out] = TensorType(kg.types[out].shape if out in kg.types else (), "int32")
    return Gemm(op.name, inputs, (out,), weight=weight, bias=bias, colsum=colsum_name, dtype=dtype)


def _dequantizes_finitely(
    kg: KernelGraph, x: str, sx: np.ndarray, w: str, sw: np.ndarray, zw: np.ndarray
) -> bool:
    """Whether DQ(x) and DQ(W) stay finite in float32 (ONNX dequantises before multiplying)."""
    lo, hi = numerics.int_range(kg.types[x].dtype) if kg.types[x].dtype != "float32" else (0, 0)
    wmax = np.abs(kg.const(w).astype(np.float64)).max(initial=0) + np.abs(
        np.asarray(zw, np.float64)
    ).max(initial=0)
    with np.errstate(all="ignore"):
        dx = np.float32(max(abs(lo), abs(hi))) * sx.astype(np.float32)
        dw = np.float32(wmax) * sw.astype(np.float32)
    return bool(np.all(np.isfinite(dx)) and np.all(np.isfinite(dw)))


def fold_qdq_matmul(kg: KernelGraph, op: Op) -> bool:
    """``MatMul(DQ(x_q), DQ(W))`` with per-tensor x and constant W -> integer GEMM + DQ."""
    if not isinstance(op, MatMul):
        return False
    pa, pb = kg.producer(op.inputs[0]), kg.producer(op.inputs[1])
    if not (isinstance(pa, DequantizeLinear) and isinstance(pb, DequantizeLinear)):
        return False
    x, sx, zx = pa.inputs
    w, sw, zw = pb.inputs
    consts = [_scalar(kg, n) for n in (sx, zx, sw, zw)]
    if not kg.is_const(w) or any(c is None for c in consts) or consts[0].size != 1:
        return False
    sx_v, zx_v, sw_v, zw_v = consts
    with np.errstate(all="ignore"):
        scale = (np.float32(sx_v.reshape(-1)[0]) * sw_v.astype(np.float32).reshape(-1)).astype(
            np.float32
        )
    if not np.all(np.isfinite(scale) & (scale > 0)) or not _dequantizes_finitely(
        kg, x, sx_v, w, sw_v, zw_v
    ):
        return False  # float32 over/underflow: the integer GEMM would not give x*sx . w*sw
    acc = kg.fresh_name(f"{op.outputs[0]}/acc")
    gemm = _make_int_gemm(kg, op, x, kg.const(w), zw_v, pb.axis, zx_v, acc)
    if gemm is None:
        return False
    kg.types[acc] = TensorType(kg.types[op.outputs[0]].shape, "int32")
    scale_name = kg.add_const(
        f"{op.name}/acc_scale", scale if scale.size > 1 else scale.reshape(())
    )
    zero = kg.add_const(f"{op.name}/acc_zero", np.zeros((), dtype=np.int32))
    dq = DequantizeLinear(
        f"{op.name}/dq_acc",
        (acc, scale_name, zero),
        op.outputs,
        axis=-1 if scale.size > 1 else None,
    )
    kg.replace(op, (gemm, dq))
    return True


def fold_matmul_integer(kg: KernelGraph, op: Op) -> bool:
    """``MatMulInteger(x, W, zx, zw)`` -> integer GEMM (zx static or a run-time tensor)."""
    if not isinstance(op, MatMulInteger):
        return False
    x, w, zx, zw = op.inputs
    zw_v = _scalar(kg, zw)
    if not kg.is_const(w) or zw_v is None:
        return False
    zx_v: np.ndarray | str = kg.const(zx) if kg.is_const(zx) else zx
    axis = 1 if np.asarray(zw_v).size > 1 else None
    gemm = _make_int_gemm(kg, op, x, kg.const(w), zw_v, axis, zx_v, op.outputs[0])
    if gemm is None:
        return False
    _swap(kg, op, gemm)
    return True


@dataclass(frozen=True)
class QuantGemm(RewritePass):
    """QDQ MatMul and MatMulInteger -> integer GEMM. Options turn each rule off."""

    name: ClassVar[str] = "quant-gemm"
    qdq_matmul: bool = True
    matmul_integer: bool = True

    def rules(self) -> tuple[Rule, ...]:
        on = ((fold_qdq_matmul, self.qdq_matmul), (fold_matmul_integer, self.matmul_integer))
        return tuple(rule for rule, enabled in on if enabled)
