"""Rewrite rules that turn primitive KernelGraph ops into hardware ops.

Each rule is a small function ``rule(kg, op) -> bool`` that looks at one op and its neighbours,
rewrites the graph in place when its pattern matches and returns whether it did. The pass driver
(:mod:`codesign.passes.pipeline`) applies rules until none fires. Every rule keeps the graph's
numbers (up to the documented requantisation rounding): the tests check each rule on a tiny graph
before and after.

Patterns (x_q: integer tensor, W: integer constant, s*: scales):

- ``MatMul(DQ(x_q, sx, zx), DQ(W, sw, zw))``  ->  ``DQ(Gemm_int(x_q; W - zw), sx*sw, 0)``
- ``MatMulInteger(x_q, W, zx, zw)``            ->  ``Gemm_int(x_q[, zx]; W - zw)``
- ``Add(DQ(Gemm_int, s, 0), c)``               ->  ``DQ(Gemm_int + round(c / s), s, 0)``
- ``Relu(DQ(Gemm_int, s, 0))``                 ->  ``DQ(Gemm_int with ReLU, s, 0)``
- ``Q(DQ(Gemm_int, s, 0), sy, zy)``            ->  ``Gemm_int requantised by s / sy, zy``
- ``Add(Gemm_bf16, c)``, ``Relu(Gemm_bf16)``   ->  bias / ReLU folded into the bf16 GEMM
- ``MatMul(x, W_float)``                       ->  ``Gemm_bf16(x; W)``
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from codesign.errors import ModelError, UnsupportedError
from codesign.ir.graph import (
    DequantizeLinear,
    DynamicQuantizeLinear,
    Gemm,
    KernelGraph,
    MatMul,
    MatMulInteger,
    Op,
    QuantizeLinear,
    Requant,
    TensorType,
    Vector,
)
from codesign.sim import numerics

#: Largest finite bfloat16 value: float weights beyond it would become infinite on the AIE.
BF16_MAX = float(np.float32(np.uint32(0x7F7F0000).view(np.float32)))


def _sole_consumer(kg: KernelGraph, tensor: str) -> Op | None:
    users = kg.consumers(tensor)
    if len(users) != 1 or kg.is_graph_output(tensor):
        return None
    return users[0]


def _swap(kg: KernelGraph, old: Op, new: Op | None) -> None:
    i = kg.ops.index(old)
    if new is None:
        del kg.ops[i]
    else:
        kg.ops[i] = new


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


def _no_int_gemm(
    kg: KernelGraph, op: Op, a: str, w: np.ndarray, zw: np.ndarray, w_axis: int | None
) -> UnsupportedError:
    """Why ``_make_int_gemm`` found no exact integer GEMM for ``op``, as a one-line refusal.

    A quantized GEMM is never switched to another arithmetic (bf16) behind the user's back:
    these forms are refused, naming what to change.
    """
    where = f"node {op.name!r}"
    if w.ndim != 2:
        return UnsupportedError(f"{where}: the quantized weight must be 2-D, not shape {w.shape}")
    if w_axis not in (None, 1, -1) and np.asarray(zw).size > 1:
        return UnsupportedError(
            f"{where}: per-channel weight quantisation must be along the output axis (1), "
            f"not axis {w_axis}"
        )
    a_dtype = kg.types[a].dtype
    if a_dtype not in ("int8", "uint8", "int16", "int4", "uint4"):
        return UnsupportedError(
            f"{where}: {a_dtype} activations have no exact AIE-ML integer GEMM; quantize the "
            "activations to int8, uint8 or int16 (onnxruntime activation_type QInt8, QUInt8, "
            "QInt16)"
        )
    shifted = _shift_weight(w, zw, w_axis)
    return UnsupportedError(
        f"{where}: the weight minus its zero point spans {int(shifted.min())}..{int(shifted.max())}"
        f", beyond int16, so no exact AIE-ML integer GEMM holds it; quantize the weights "
        "symmetric (onnxruntime extra_options WeightSymmetric=True) or to 8 bits"
    )


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
    if not kg.is_const(w) or any(c is None for c in consts):
        return False
    if consts[0].size != 1:
        raise UnsupportedError(
            f"node {op.name!r}: the activation {x!r} must be quantized per tensor (one scale) "
            f"for an integer GEMM, not with {consts[0].size} scales along an axis"
        )
    sx_v, zx_v, sw_v, zw_v = consts
    with np.errstate(all="ignore"):
        scale = (np.float32(sx_v.reshape(-1)[0]) * sw_v.astype(np.float32).reshape(-1)).astype(
            np.float32
        )
    if not np.all(np.isfinite(scale) & (scale > 0)) or not _dequantizes_finitely(
        kg, x, sx_v, w, sw_v, zw_v
    ):
        # float32 over/underflow: the integer GEMM would not give x*sx . w*sw, and a bf16 GEMM
        # would be another arithmetic
        raise UnsupportedError(
            f"node {op.name!r}: the product of activation scale {sx!r} and weight scale {sw!r}"
            f" (or a dequantised operand) leaves the normal float32 range "
            f"(smallest scale product {float(np.min(scale, initial=np.inf)):.3g}); "
            "use scales whose products stay normal float32 numbers (>= 1.2e-38)"
        )
    acc = kg.fresh_name(f"{op.outputs[0]}/acc")
    gemm = _make_int_gemm(kg, op, x, kg.const(w), zw_v, pb.axis, zx_v, acc)
    if gemm is None:
        raise _no_int_gemm(kg, op, x, kg.const(w), zw_v, pb.axis)
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
    i = kg.ops.index(op)
    kg.ops[i : i + 1] = [gemm, dq]
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
        raise _no_int_gemm(kg, op, x, kg.const(w), zw_v, axis)
    _swap(kg, op, gemm)
    return True


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


def _bias_steps(bias: np.ndarray, step: np.ndarray) -> np.ndarray | None:
    """``bias / step`` as whole accumulator steps, or None when that would change the bias.

    onnxruntime's quantizer stores the bias as int32 with scale ``sx * sw``, so the float bias
    is a whole number of steps up to float32 rounding (2**-24 relative). Any other bias would be
    moved by up to half a step; even a small fraction of an output LSB moves some outputs by one
    LSB, and a chain of layers spreads that (the fuzzer found 4 % of the outputs moved by a
    1/600 LSB shift in the first layer). Such a bias stays a float Add after the dequantisation.
    """
    with np.errstate(all="ignore"):
        steps = np.rint(bias / step)
        residual = np.abs(bias - steps * step)
    if not np.all(np.isfinite(steps)) or np.any(residual > np.abs(bias) * 2.0**-20):
        return None
    return steps


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
            steps = _bias_steps(bias_f, s64)
            if steps is None:
                continue  # not a whole number of accumulator steps: keep the exact float Add
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


def float_matmul_to_gemm(kg: KernelGraph, op: Op) -> bool:
    """``MatMul(x, W)`` with a float constant W -> bf16 GEMM."""
    if not (isinstance(op, MatMul) and kg.is_const(op.inputs[1])):
        return False
    w = kg.const(op.inputs[1])
    if not np.issubdtype(w.dtype, np.floating):
        return False
    w16 = numerics.to_bf16(w.astype(np.float32))
    if not np.all(np.isfinite(w16)):
        big = float(np.abs(w.astype(np.float64)).max())
        raise ModelError(
            f"node {op.name!r}: float weight {op.inputs[1]!r} must fit bf16 "
            f"(|w| < {BF16_MAX:.4g}), not {big:.4g}"
        )
    weight = kg.add_const(f"{op.name}/weight", w16)
    _swap(kg, op, Gemm(op.name, op.inputs[:1], op.outputs, weight=weight, dtype="bf16"))
    return True


def primitive_to_vector(kg: KernelGraph, op: Op) -> bool:
    """Quantize/Dequantize/DynamicQuantize left over -> element-wise vector ops."""
    if isinstance(op, QuantizeLinear):
        new = Vector(
            op.name,
            op.inputs,
            op.outputs,
            fn="quantize",
            attrs=(("axis", op.axis), ("dtype", op.dtype)),
        )
    elif isinstance(op, DequantizeLinear):
        new = Vector(op.name, op.inputs, op.outputs, fn="dequantize", attrs=(("axis", op.axis),))
    elif isinstance(op, DynamicQuantizeLinear):
        new = Vector(op.name, op.inputs, op.outputs, fn="dynamic_quantize")
    else:
        return False
    _swap(kg, op, new)
    return True


#: Rules in the order the pipeline tries them on each op.
FUSION_RULES = (fold_qdq_matmul, fold_matmul_integer)
EPILOGUE_RULES = (fold_bias, fold_relu, fold_requant, float_matmul_to_gemm)
LOWERING_RULES = (primitive_to_vector,)
