"""Lowering of the com.microsoft QOperator ops onnxruntime's ``quantize_static`` writes with
``quant_format=QuantFormat.QOperator``: QGemm (``nn.Linear`` exported as Gemm) and QLinearAdd
(the bias Add of a MatMul + Add layer, after QLinearMatMul).

Each becomes the primitive QDQ ops of the same arithmetic (DequantizeLinear, MatMul / Add,
QuantizeLinear), which :mod:`codesign.passes` folds into integer GEMMs exactly as it folds
onnxruntime's QDQ format:

- ``QGemm(A, sa, za, B, sb, zb, C, sy, zy)`` (transB, alpha 1): ``Y = (A - za)(B - zb) * sa * sb
  + C * sa * sb``, C an int32 bias in the accumulator's scale, quantized to ``(sy, zy)`` when
  given, else float32 -> ``Q(Add(MatMul(DQ(A), DQ(B)), DQ(C, sa * sb, 0)), sy, zy)``;
- ``QLinearAdd(A, sa, za, B, sb, zb, sc, zc)`` -> ``Q(Add(DQ(A), DQ(B)), sc, zc)``.

onnxruntime computes QLinearAdd with float scale ratios, so its rounding may differ from the
exact QDQ value by one step; the fidelity tolerance (1 LSB) covers it.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from codesign.errors import ModelError, UnsupportedError
from codesign.frontend.lowerings import lowering
from codesign.ir.graph import DequantizeLinear, MatMul, QuantizeLinear, TensorType, Vector


def _attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _per_tensor_or_axis(lw, v: ir.Value, what: str, size: int) -> int | None:
    """None for a one-element parameter; the axis (0) for a 1-D one of ``size`` elements."""
    t = lw.kg.types[v.name]
    if t.size == 1:
        return None
    if t.shape == (size,):
        return 0
    raise ModelError(
        f"{lw.where()}: {what} {v.name!r} must be a scalar or 1-D of {size}, not {t.shape}"
    )


@lowering("QGemm", domain="com.microsoft")
def _qgemm(lw, node: ir.Node) -> None:
    ins = list(node.inputs) + [None] * (9 - len(node.inputs))
    a, sa, za, b, sb, zb, c, sy, zy = ins[:9]
    if a is None or sa is None or b is None or sb is None:
        raise ModelError(f"{lw.where()}: QGemm needs inputs A, a_scale, B and b_scale")
    if _attr(node, "transA", 0):
        raise UnsupportedError(f"{lw.where()}: QGemm with transA=1 is not supported")
    alpha = float(_attr(node, "alpha", 1.0))
    if alpha != 1.0:
        raise UnsupportedError(f"{lw.where()}: QGemm alpha must be 1.0, not {alpha}")
    kg = lw.kg
    wq = lw.need_const(b, "QGemm B")
    if wq.ndim != 2:
        raise UnsupportedError(f"{lw.where()}: QGemm B must be 2-D, not shape {wq.shape}")
    trans_b = bool(_attr(node, "transB", 0))
    w_kn = np.ascontiguousarray(wq.T if trans_b else wq)
    n = w_kn.shape[1]
    sb_v = lw.need_const(sb, "QGemm b_scale").astype(np.float32)
    sa_v = lw.need_const(sa, "QGemm a_scale").astype(np.float32)
    if sa_v.size != 1:
        raise UnsupportedError(f"{lw.where()}: QGemm a_scale must be one value (per tensor)")
    b_axis = _per_tensor_or_axis(lw, sb, "b_scale", n)
    out = node.outputs[0]
    stem = node.name or out.name
    fresh = kg.fresh_name
    ta, to = kg.types[a.name], kg.types[out.name]
    # A and B dequantised (B as the [K, N] constant, its per-channel axis then 1)
    da, db, mm = fresh(f"{stem}/a_dq"), fresh(f"{stem}/b_dq"), fresh(f"{stem}/mm")
    kg.types[da] = TensorType(ta.shape, "float32")
    kg.types[db] = TensorType(w_kn.shape, "float32")
    if sy is None and to.dtype != "float32":
        raise ModelError(f"{lw.where()}: QGemm without y_scale must give float32")
    # the float result: the node's output itself when it is not quantized (no y_scale)
    result = out.name if sy is None else fresh(f"{stem}/y")
    if c is None:
        mm = result
    kg.types[mm] = TensorType(to.shape, "float32")
    kg.types[result] = TensorType(to.shape, "float32")
    wname = kg.add_const(f"{b.name}_KN" if trans_b else b.name, w_kn)
    za_name = za.name if za is not None else _zero(lw, stem, "a", ta.dtype)
    zb_name = zb.name if zb is not None else _zero(lw, stem, "b", kg.types[b.name].dtype)
    lw.emit(DequantizeLinear(f"{stem}/dq_a", (a.name, sa.name, za_name), (da,)))
    lw.emit(
        DequantizeLinear(
            f"{stem}/dq_b", (wname, sb.name, zb_name), (db,), axis=None if b_axis is None else 1
        )
    )
    lw.emit(MatMul(stem, (da, db), (mm,)))
    if c is not None:
        cv = lw.need_const(c, "QGemm C")
        if cv.dtype != np.int32 or cv.size not in (1, n):
            raise UnsupportedError(
                f"{lw.where()}: QGemm C must be an int32 bias of 1 or {n} values, not "
                f"{cv.dtype} {cv.shape}"
            )
        # C is in the accumulator's scale a_scale * b_scale (zero point 0), per column when
        # b_scale is
        scale = (sa_v.reshape(-1)[0] * sb_v.reshape(-1)).astype(np.float32)
        c_vec = np.broadcast_to(cv.reshape(-1), (n,)).astype(np.int32)
        c_name = kg.add_const(f"{stem}/bias_q", np.ascontiguousarray(c_vec))
        s_name = kg.add_const(f"{stem}/bias_scale", scale if scale.size > 1 else scale.reshape(()))
        z_name = kg.add_const(f"{stem}/bias_zero", np.zeros((), dtype=np.int32))
        dc = fresh(f"{stem}/bias_dq")
        kg.types[dc] = TensorType((n,), "float32")
        lw.emit(
            DequantizeLinear(
                f"{stem}/dq_bias",
                (c_name, s_name, z_name),
                (dc,),
                axis=0 if scale.size > 1 else None,
            )
        )
        lw.emit(Vector(f"{stem}/bias", (mm, dc), (result,), fn="add"))
    if sy is None:
        return
    if kg.types[sy.name].size != 1:
        raise UnsupportedError(f"{lw.where()}: QGemm y_scale must be one value (per tensor)")
    zy_name = zy.name if zy is not None else _zero(lw, stem, "y", to.dtype)
    lw.emit(QuantizeLinear(f"{stem}/q", (result, sy.name, zy_name), (out.name,), dtype=to.dtype))


def _zero(lw, stem: str, what: str, dtype: str) -> str:
    return lw.kg.add_const(
        f"{stem}/{what}_zero_point",
        np.zeros((), dtype=np.uint8 if dtype.startswith("u") else np.int8),
    )


@lowering("QLinearAdd", domain="com.microsoft")
def _qlinear_add(lw, node: ir.Node) -> None:
    ins = list(node.inputs) + [None] * (8 - len(node.inputs))
    a, sa, za, b, sb, zb, sc, zc = ins[:8]
    if any(v is None for v in (a, sa, b, sb, sc)):
        raise ModelError(f"{lw.where()}: QLinearAdd needs inputs A, A_scale, B, B_scale, C_scale")
    kg = lw.kg
    out = node.outputs[0]
    stem = node.name or out.name
    for s in (sa, sb, sc):
        if kg.types[s.name].size != 1:
            raise UnsupportedError(
                f"{lw.where()}: QLinearAdd scales must be one value each (per tensor)"
            )
    deq = []
    for x, s, z, tag in ((a, sa, za, "a"), (b, sb, zb, "b")):
        d = kg.fresh_name(f"{stem}/{tag}_dq")
        kg.types[d] = TensorType(kg.types[x.name].shape, "float32")
        zn = z.name if z is not None else _zero(lw, stem, tag, kg.types[x.name].dtype)
        lw.emit(DequantizeLinear(f"{stem}/dq_{tag}", (x.name, s.name, zn), (d,)))
        deq.append(d)
    to = kg.types[out.name]
    summed = kg.fresh_name(f"{stem}/sum")
    kg.types[summed] = TensorType(to.shape, "float32")
    try:
        np.broadcast_shapes(*(kg.types[d].shape for d in deq), to.shape)
    except ValueError:
        raise ModelError(f"{lw.where()}: QLinearAdd inputs must broadcast to {to.shape}") from None
    lw.emit(Vector(f"{stem}/add", tuple(deq), (summed,), fn="add"))
    zc_name = zc.name if zc is not None else _zero(lw, stem, "c", to.dtype)
    lw.emit(QuantizeLinear(f"{stem}/q", (summed, sc.name, zc_name), (out.name,), dtype=to.dtype))
