"""Lower a checked, shape-inferred ONNX model to a KernelGraph of primitive ops.

One ONNX node becomes one or a few primitive ops (QLinearMatMul expands to DQ, DQ, MatMul, Q;
Gemm to MatMul + Add). Quantisation stays explicit here; :mod:`codesign.passes` folds it into
hardware GEMMs. Only this package imports onnx / onnx-ir.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from codesign.errors import ModelError, UnsupportedError
from codesign.frontend import lower_attention, lower_nonlinear, lowerings
from codesign.frontend.host import HostPartitioner, op_label
from codesign.frontend.lowerings import lowering
from codesign.frontend.validate import check_dims, check_reshape_target
from codesign.ir.graph import (
    DequantizeLinear,
    DynamicQuantizeLinear,
    KernelGraph,
    MatMul,
    MatMulInteger,
    QuantizeLinear,
    Reshape,
    TensorType,
    Vector,
)

_DTYPES = {
    ir.DataType.FLOAT: "float32",
    ir.DataType.INT8: "int8",
    ir.DataType.UINT8: "uint8",
    ir.DataType.INT16: "int16",
    ir.DataType.UINT16: "uint16",
    ir.DataType.INT32: "int32",
    ir.DataType.INT64: "int64",
    ir.DataType.INT4: "int4",
    ir.DataType.UINT4: "uint4",
    # bool tensors (masks) are held as uint8 0/1 (codesign.sim.nonlinear); Cast to bool is
    # lowered to "nonzero", not to an integer cast
    ir.DataType.BOOL: "uint8",
}

_ELEMENTWISE = {"Add": "add", "Sub": "sub", "Mul": "mul", "Relu": "relu", "Cast": "cast"}


class _Lowering:
    def __init__(
        self,
        model: onnx.ModelProto,
        source: str,
        host_nodes: frozenset[str] = frozenset(),
        keep_going: bool = False,
    ) -> None:
        self.source = source
        #: with ``keep_going`` (``codesign inspect``), a node whose lowering raises ModelError
        #: is recorded in :attr:`refused` (label -> message) and handed to the Host, so every
        #: blocker is found in one run
        self.keep_going = keep_going
        self.refused: dict[str, str] = {}
        self.model = ir.serde.deserialize_model(model)
        g = self.model.graph
        self.kg = KernelGraph(
            inputs=[v.name for v in g.inputs if v.name not in g.initializers],
            outputs=[v.name for v in g.outputs],
        )
        self._node: ir.Node | None = None
        self.kg.reserved.update(_all_names(model.graph))
        self.host = HostPartitioner(self, host_nodes)

    # -- helpers -------------------------------------------------------------------------------

    def where(self) -> str:
        n = self._node
        return f"{self.source}: node {n.name or '<unnamed>'!r} ({n.op_type})" if n else self.source

    def type_of(self, v: ir.Value) -> TensorType:
        if v.type is None or v.shape is None:
            raise ModelError(f"{self.where()}: tensor {v.name!r} has no inferred type/shape")
        dtype = _DTYPES.get(v.dtype)
        if dtype is None:
            raise UnsupportedError(
                f"{self.where()}: tensor {v.name!r} has element type {v.dtype.name}; "
                f"supported are {', '.join(sorted(set(_DTYPES.values())))}"
            )
        dims = []
        for i, d in enumerate(v.shape):
            if not isinstance(d, int):
                raise ModelError(
                    f"{self.where()}: tensor {v.name!r} dimension {i} is dynamic ({d}); "
                    "fix the graph inputs with --shape"
                )
            dims.append(d)
        if 0 in dims:
            # legal ONNX, but the accelerator moves no empty tensors: the node goes to the Host
            # (constants, which fold away or become Host initializers, never come here)
            raise UnsupportedError(
                f"{self.where()}: tensor {v.name!r} is empty (shape {dims}); "
                "the accelerator does not take empty tensors"
            )
        check_dims(dims, f"{self.where()}: tensor {v.name!r}")
        return TensorType(tuple(dims), dtype)

    def declare(self, v: ir.Value) -> str:
        if v.name not in self.kg.types:
            self.kg.types[v.name] = self.type_of(v)
        return v.name

    def const_value(self, v: ir.Value | None) -> np.ndarray | None:
        if v is None:
            return None
        if v.name in self.kg.constants:
            return self.kg.constants[v.name]
        return None

    def need_const(self, v: ir.Value | None, what: str) -> np.ndarray:
        arr = self.const_value(v)
        if arr is None:
            raise UnsupportedError(f"{self.where()}: {what} must be a constant initializer")
        return arr

    def add_const(self, v: ir.Value) -> None:
        t = v.const_value
        try:
            arr = _no_bool(np.asarray(t.numpy()))
        except Exception as e:
            raise ModelError(
                f"{self.source}: initializer {v.name!r} is unreadable: {_short(e)}"
            ) from None
        for use in v.uses():
            if use.idx in _SCALE_SLOTS.get(use.node.op_type, ()):
                self._node = use.node
                _check_scale(self, v, arr)
                self._node = None
        _check_finite(arr, f"{self.source}: initializer {v.name!r}{_used_by(v)}", _mask_fill(v))
        self.kg.constants[v.name] = arr
        self.kg.types[v.name] = TensorType(tuple(arr.shape), _dtype_of(arr, v, self.source))

    def emit(self, op) -> None:
        self.kg.append(op)

    def inputs(self, node: ir.Node) -> list[ir.Value | None]:
        return list(node.inputs)

    # -- driver --------------------------------------------------------------------------------

    def run(self) -> KernelGraph:
        g = self.model.graph
        for v in g.inputs:
            if v.name not in g.initializers:
                if v.dtype == ir.DataType.BOOL:
                    # bool is held as uint8 0/1 inside the graph only: a run-time input would
                    # be fed as bytes the reference reads differently
                    raise UnsupportedError(
                        f"{self.source}: graph input {v.name!r} is bool; give masks as int64 "
                        "or float (1 = keep, 0 = pad), as exporters write attention_mask"
                    )
                self.declare(v)
        for v in g.initializers.values():
            try:
                self.add_const(v)
            except ModelError as e:
                if not self.keep_going:
                    raise
                # inspect: the node that reads the bad constant is refused (its own lowering
                # says so again); the value is kept so the rest of the graph still lowers
                if self._node is not None:
                    self.refused[self.host.label(self._node)] = self._reason(e)
                self._node = None
                arr = np.asarray(v.const_value.numpy())
                self.kg.constants[v.name] = arr
                self.kg.types[v.name] = TensorType(tuple(arr.shape), _dtype_of(arr, v, self.source))
        for node in g:
            self._node = node
            self.lower(node)
        self._node = None
        self.host.flush()
        for v in g.outputs:
            self.declare(v)
            if v.name in self.kg.constants:
                raise UnsupportedError(
                    f"{self.source}: graph output {v.name!r} must be computed, not a constant"
                )
        self.kg.validate()
        return self.kg

    def lower(self, node: ir.Node) -> None:
        """Lower ``node`` to primitive ops, or hand it to the Host partitioner: when no lowering
        is registered for it, when its lowering raises UnsupportedError (that message is the
        reason; what the lowering emitted is taken back), or when it must stay beside a Host
        partition (see :mod:`codesign.frontend.host`). ModelError stays an error."""
        fn = lowerings.find(node.domain, node.op_type)
        reason = self.host.forced_reason(node)
        if reason is None and fn is None:
            hint = ""
            if node.domain == "com.microsoft" and node.op_type.startswith("Q"):
                # what onnxruntime's quantizer writes in QuantFormat.QOperator (QGemm,
                # QLinearAdd, ...): its QDQ format expresses the same model in standard ops
                hint = "; quantize with onnxruntime's quant_format=QuantFormat.QDQ instead"
            reason = f"op {op_label(node)} is not supported by the accelerator{hint}"
        closing: list = []
        if reason is None:
            reason, closing = self.host.before_lowering(node)
        if reason is not None:
            self.host.add(node, reason)
            return
        mark = (self.kg.num_ops(), len(self.kg.types), len(self.kg.constants))
        try:
            self.host.declare_outputs(closing)  # the Host partitions the node reads
            if node.op_type != "Constant":
                for v in node.inputs:
                    if v is not None and v.name not in self.kg.types:
                        raise ModelError(
                            f"{self.where()}: input {v.name!r} is not defined before use"
                        )
                for v in node.outputs:
                    self.declare(v)
            fn(self, node)
        except UnsupportedError as e:
            self._take_back(mark)
            self.host.add(node, self._reason(e))
        except ModelError as e:
            if not self.keep_going:
                raise
            self._take_back(mark)
            self.refused[self.host.label(node)] = self._reason(e)
            self.host.add(node, self._reason(e))
        else:
            if closing:  # the partitions it reads close in front of its ops
                first = self.kg.ops[mark[0]] if self.kg.num_ops() > mark[0] else None
                self.host.flush(closing, before=first)

    def _take_back(self, mark: tuple[int, int, int]) -> None:
        """Undo what a refused lowering emitted: ops, tensor types and constants added since
        ``mark`` (dicts keep insertion order, so the new entries are the last ones)."""
        n_ops, n_types, n_consts = mark
        for op in self.kg.ops[n_ops:]:
            self.kg.remove(op)
        for d, n in ((self.kg.types, n_types), (self.kg.constants, n_consts)):
            for key in list(d)[n:]:
                del d[key]

    def _reason(self, e: Exception) -> str:
        text = str(e)
        head = f"{self.where()}: "
        return text[len(head) :] if text.startswith(head) else text


def _all_names(g: onnx.GraphProto) -> set[str]:
    names = {v.name for v in [*g.input, *g.output, *g.value_info]}
    names.update(t.name for t in g.initializer)
    for n in g.node:
        names.update(n.input)
        names.update(n.output)
    return names


def _dtype_of(arr: np.ndarray, v: ir.Value, source: str) -> str:
    name = _DTYPES.get(v.dtype)
    if name is None:
        raise UnsupportedError(
            f"{source}: initializer {v.name!r} has unsupported type {v.dtype.name}"
        )
    return name


#: ops whose constant inputs may hold +-inf: the fill values of attention masks (Where), and
#: an additive attention mask (Add) whose sum goes only into Softmax (see :func:`_mask_fill`);
#: weights, biases, scales and other additive constants must stay finite
_INF_CONSUMERS = ("Where",)


def _additive_mask(use: Any) -> bool:
    """An Add whose every result use is a Softmax: the causal mask TorchScript folds into a
    constant (``scores + mask``, -inf above the diagonal) -- softmax gives the -inf positions
    weight 0, and the sum is no bias a GEMM epilogue or a quantiser could absorb."""
    if use.node.op_type != "Add":
        return False
    uses = list(use.node.outputs[0].uses())
    return bool(uses) and all(u.node.op_type == "Softmax" for u in uses)


def _mask_fill(v: ir.Value) -> bool:
    """Whether every use of ``v`` is one that may take an infinite mask value."""
    uses = list(v.uses())
    return bool(uses) and all(u.node.op_type in _INF_CONSUMERS or _additive_mask(u) for u in uses)


def _check_finite(arr: np.ndarray, where: str, allow_inf: bool = False) -> None:
    """Float constants (weights, biases, scales) must hold finite numbers; a mask fill value
    (``allow_inf``) may be +-inf but not NaN."""
    if not np.issubdtype(arr.dtype, np.floating):
        return
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), arr.shape) if arr.ndim else ()
        value = arr[first] if arr.ndim else arr
        at = f" at index {list(map(int, first))}" if arr.ndim else ""
        raise ModelError(f"{where} must hold finite numbers, not {value}{at}")


def _used_by(v: ir.Value) -> str:
    uses = sorted({(u.node.name or "<unnamed>", u.node.op_type) for u in v.uses()})
    if not uses:
        return ""
    name, op = uses[0]
    more = f" and {len(uses) - 1} more" if len(uses) > 1 else ""
    return f" (input of node {name!r} ({op}){more})"


def _no_bool(arr: np.ndarray) -> np.ndarray:
    """A bool constant as uint8 0/1 (the KernelGraph's form of bool tensors)."""
    return arr.astype(np.uint8) if arr.dtype == np.bool_ else arr


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _names(vals) -> tuple[str, ...]:
    return tuple("" if v is None else v.name for v in vals)


# -- one function per ONNX op ----------------------------------------------------------------


def _constant(lw: _Lowering, node: ir.Node) -> None:
    t = _attr(node, "value")
    if t is None:
        raise UnsupportedError(f"{lw.where()}: only Constant with a 'value' tensor is supported")
    out = node.outputs[0]
    try:
        arr = _no_bool(np.asarray(t.numpy()))
    except Exception as e:
        raise ModelError(f"{lw.where()}: the 'value' tensor is unreadable: {_short(e)}") from None
    _check_finite(arr, f"{lw.where()}: the 'value' tensor", _mask_fill(out))
    lw.kg.constants[out.name] = arr
    lw.kg.types[out.name] = TensorType(tuple(arr.shape), _dtype_of(arr, out, lw.source))


def _quantize(lw: _Lowering, node: ir.Node) -> None:
    ins = lw.inputs(node)
    x, scale = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    out = node.outputs[0]
    dtype = lw.kg.types[out.name].dtype
    axis = _check_qparams(lw, node, x, scale, zp)
    zp_name = _zero_point(lw, zp, dtype)
    lw.emit(
        QuantizeLinear(
            node.name,
            (x.name, scale.name, zp_name),
            (out.name,),
            dtype=dtype,
            axis=axis,
        )
    )


def _dequantize(lw: _Lowering, node: ir.Node) -> None:
    ins = lw.inputs(node)
    x, scale = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis = _check_qparams(lw, node, x, scale, zp)
    zp_name = _zero_point(lw, zp, lw.kg.types[x.name].dtype)
    lw.emit(
        DequantizeLinear(
            node.name,
            (x.name, scale.name, zp_name),
            (node.outputs[0].name,),
            axis=axis,
        )
    )


def _check_qparams(
    lw: _Lowering, node: ir.Node, x: ir.Value, scale: ir.Value, zp: ir.Value | None
) -> int | None:
    """Check a Q/DQ node's scale and zero point; return the quantisation axis (None: per tensor).

    The scale must be float32, a scalar or a 1-D vector as long as ``x`` along ``axis``, finite
    and positive when constant; the zero point must have the scale's shape and, when constant,
    lie in the range of its integer type.
    """
    if _attr(node, "block_size", 0):
        raise UnsupportedError(
            f"{lw.where()}: blocked quantisation (block_size) is not supported yet"
        )
    ts = lw.kg.types[scale.name]
    if ts.dtype != "float32":
        raise UnsupportedError(
            f"{lw.where()}: quantisation scale {scale.name!r} must be float32, not {ts.dtype}"
        )
    if len(ts.shape) > 1:
        raise ModelError(
            f"{lw.where()}: quantisation scale {scale.name!r} must be a scalar or 1-D, "
            f"not shape {ts.shape}"
        )
    _check_scale(lw, scale)
    if zp is not None:
        tz = lw.kg.types[zp.name]
        # onnxruntime accepts a one-element zero point beside a one-element scale whatever their
        # ranks (its quantize_static writes a (1,) bias scale with a () zero point): both are
        # per-tensor parameters, so only a differing element count is an error.
        if tz.shape != ts.shape and not (tz.size == 1 and ts.size == 1):
            raise ModelError(
                f"{lw.where()}: zero point {zp.name!r} must have the scale's shape {ts.shape}, "
                f"not {tz.shape}"
            )
        _check_zero_point(lw, zp)
    if ts.size == 1:
        # a one-element scale is per tensor for onnxruntime (IsScalarOr1ElementVector); the axis
        # attribute is then not used, whatever x's rank
        return None
    xshape = lw.kg.types[x.name].shape
    rank = len(xshape)
    axis = int(_attr(node, "axis", 1))
    if not -rank <= axis < rank:
        raise ModelError(f"{lw.where()}: axis must lie in [{-rank}, {rank}), not {axis}")
    axis %= rank
    if ts.shape[0] != xshape[axis]:
        raise ModelError(
            f"{lw.where()}: per-axis scale {scale.name!r} must have {xshape[axis]} elements "
            f"(dimension {axis} of {x.name!r}, shape {xshape}), not {ts.shape[0]}"
        )
    return axis


#: Input slots that hold quantisation scales, by op type.
_SCALE_SLOTS = {
    "QuantizeLinear": (1,),
    "DequantizeLinear": (1,),
    "QLinearMatMul": (1, 4, 6),
    "QGemm": (1, 4, 7),  # com.microsoft
    "QLinearAdd": (1, 4, 6),  # com.microsoft
}


def _check_scale(lw: _Lowering, scale: ir.Value, value: np.ndarray | None = None) -> None:
    s = lw.const_value(scale) if value is None else value
    if s is None or not np.issubdtype(s.dtype, np.floating):
        return
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ModelError(
            f"{lw.where()}: quantisation scale {scale.name!r} must be finite and positive, "
            f"not {s.ravel()[:4].tolist()}"
        )


def _check_zero_point(lw: _Lowering, zp: ir.Value) -> None:
    z = lw.const_value(zp)
    dtype = lw.kg.types[zp.name].dtype
    if z is None or dtype == "float32":
        return
    lo, hi = {"int4": (-8, 7), "uint4": (0, 15)}.get(dtype, (None, None))
    if lo is not None and (np.any(z < lo) or np.any(z > hi)):
        raise ModelError(
            f"{lw.where()}: zero point {zp.name!r} must lie in {lo}..{hi} ({dtype}), "
            f"not {z.ravel()[:4].tolist()}"
        )


def _zero_point(lw: _Lowering, zp: ir.Value | None, dtype: str) -> str:
    if zp is not None:
        return zp.name
    name = lw.kg.add_const(
        f"{lw._node.name or 'q'}_zero_point",
        np.zeros((), dtype=np.uint8 if dtype.startswith("u") else np.int8),
    )
    return name


def _dynamic_quantize(lw: _Lowering, node: ir.Node) -> None:
    lw.emit(DynamicQuantizeLinear(node.name, _names(node.inputs), _names(node.outputs)))


def _matmul(lw: _Lowering, node: ir.Node) -> None:
    a, b = node.inputs
    if not _is_weight(lw, b.name):  # QK^T, attention x V: both operands streamed
        lower_attention.activation_matmul(lw, node)
        return
    _check_matmul_shapes(lw, a.name, b.name)
    lw.emit(MatMul(node.name, (a.name, b.name), (node.outputs[0].name,)))


def _check_matmul_shapes(lw: _Lowering, a: str, b: str) -> None:
    ta, tb = lw.kg.types[a], lw.kg.types[b]
    if len(tb.shape) != 2:
        raise UnsupportedError(
            f"{lw.where()}: MatMul B must be a 2-D weight [K, N], not shape {tb.shape} "
            "(activation x activation products are not supported yet)"
        )
    if not _is_weight(lw, b):
        raise UnsupportedError(
            f"{lw.where()}: MatMul B {b!r} must be a constant weight (or a dequantised one); "
            "activation x activation products are not supported yet"
        )
    if len(ta.shape) < 1 or ta.shape[-1] != tb.shape[0]:
        raise ModelError(
            f"{lw.where()}: MatMul inner dimensions must agree, not {ta.shape} x {tb.shape}"
        )


def _is_weight(lw: _Lowering, name: str) -> bool:
    if name in lw.kg.constants:
        return True
    prod = lw.kg.producer(name)
    return isinstance(prod, DequantizeLinear) and prod.inputs[0] in lw.kg.constants


def _matmul_integer(lw: _Lowering, node: ir.Node) -> None:
    ins = list(node.inputs) + [None] * (4 - len(node.inputs))
    a, b, a_zp, b_zp = ins
    if b.name not in lw.kg.constants or len(lw.kg.types[b.name].shape) != 2:
        raise UnsupportedError(f"{lw.where()}: MatMulInteger B must be a 2-D constant weight")
    n = lw.kg.types[b.name].shape[1]
    if a_zp is not None and lw.kg.types[a_zp.name].size != 1:
        raise UnsupportedError(
            f"{lw.where()}: MatMulInteger a_zero_point {a_zp.name!r} must be a single value, "
            f"not shape {lw.kg.types[a_zp.name].shape} (per-row zero points are not supported)"
        )
    if b_zp is not None:
        _check_vector_param(lw, b_zp, "b_zero_point", n)
    names = (
        a.name,
        b.name,
        a_zp.name if a_zp is not None else _zero_point(lw, None, lw.kg.types[a.name].dtype),
        b_zp.name if b_zp is not None else _zero_point(lw, None, lw.kg.types[b.name].dtype),
    )
    lw.emit(MatMulInteger(node.name, names, (node.outputs[0].name,)))


def _qlinear_matmul(lw: _Lowering, node: ir.Node) -> None:
    a, sa, za, b, sb, zb, sy, zy = node.inputs
    out = node.outputs[0]
    stem = node.name or out.name
    if b.name not in lw.kg.constants or len(lw.kg.types[b.name].shape) != 2:
        raise UnsupportedError(f"{lw.where()}: QLinearMatMul b must be a 2-D constant weight")
    n = lw.kg.types[b.name].shape[1]
    for s, z, what, size in ((sa, za, "a", 1), (sb, zb, "b", n), (sy, zy, "y", 1)):
        _check_vector_param(lw, s, f"{what}_scale", size)
        _check_vector_param(lw, z, f"{what}_zero_point", size)
        ts_, tz_ = lw.kg.types[s.name], lw.kg.types[z.name]
        if ts_.shape != tz_.shape and not (ts_.size == 1 and tz_.size == 1):
            raise ModelError(
                f"{lw.where()}: {what}_zero_point {z.name!r} must have the shape of "
                f"{what}_scale, {lw.kg.types[s.name].shape}, not {lw.kg.types[z.name].shape}"
            )
        _check_scale(lw, s)
    da, db, mm = (lw.kg.fresh_name(f"{stem}/{x}") for x in ("a_dq", "b_dq", "mm"))
    ta, tb = lw.kg.types[a.name], lw.kg.types[b.name]
    to = lw.kg.types[out.name]
    lw.kg.types[da] = TensorType(ta.shape, "float32")
    lw.kg.types[db] = TensorType(tb.shape, "float32")
    lw.kg.types[mm] = TensorType(to.shape, "float32")
    b_axis = 1 if lw.kg.types[sb.name].size > 1 else None
    lw.emit(DequantizeLinear(f"{stem}/dq_a", (a.name, sa.name, za.name), (da,)))
    lw.emit(DequantizeLinear(f"{stem}/dq_b", (b.name, sb.name, zb.name), (db,), axis=b_axis))
    lw.emit(MatMul(stem, (da, db), (mm,)))
    lw.emit(QuantizeLinear(f"{stem}/q", (mm, sy.name, zy.name), (out.name,), dtype=to.dtype))


def _check_vector_param(lw: _Lowering, v: ir.Value, what: str, size: int) -> None:
    """A per-tensor (one element) or per-column (``size`` elements, 1-D) parameter."""
    t = lw.kg.types[v.name]
    ok = t.size == 1 and len(t.shape) <= 1 or t.shape == (size,)
    if not ok:
        allowed = "a scalar" + (f" or 1-D of {size} elements" if size > 1 else "")
        raise ModelError(f"{lw.where()}: {what} {v.name!r} must be {allowed}, not shape {t.shape}")


def _gemm(lw: _Lowering, node: ir.Node) -> None:
    ins = list(node.inputs) + [None] * (3 - len(node.inputs))
    a, b, c = ins
    if _attr(node, "transA", 0):
        raise UnsupportedError(f"{lw.where()}: Gemm with transA=1 is not supported")
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    if alpha != 1.0 or (c is not None and beta != 1.0):
        raise UnsupportedError(
            f"{lw.where()}: Gemm alpha and beta must be 1.0, not {alpha} and {beta}"
        )
    out = node.outputs[0]
    stem = node.name or out.name
    wname = b.name
    if _attr(node, "transB", 0):
        wname = _transposed_weight(lw, b, stem)
    _check_matmul_shapes(lw, a.name, wname)
    if c is None:
        lw.emit(MatMul(stem, (a.name, wname), (out.name,)))
        return
    mm = lw.kg.fresh_name(f"{stem}/mm")
    lw.kg.types[mm] = TensorType(lw.kg.types[out.name].shape, "float32")
    _check_broadcast(lw, [mm, c.name], out.name)
    lw.emit(MatMul(stem, (a.name, wname), (mm,)))
    lw.emit(Vector(f"{stem}/bias", (mm, c.name), (out.name,), fn="add"))


def _transposed_weight(lw: _Lowering, b: ir.Value, stem: str) -> str:
    """Transpose a constant [N, K] weight (or the constant under its DequantizeLinear)."""
    kg = lw.kg
    if b.name in kg.constants:
        return kg.add_const(f"{b.name}_T", np.ascontiguousarray(kg.constants[b.name].T))
    prod = kg.producer(b.name)
    if not (isinstance(prod, DequantizeLinear) and prod.inputs[0] in kg.constants):
        raise UnsupportedError(
            f"{lw.where()}: Gemm B must be a constant weight (or a dequantised one)"
        )
    q = kg.constants[prod.inputs[0]]
    if q.ndim != 2:
        raise UnsupportedError(f"{lw.where()}: Gemm B must be 2-D, not shape {q.shape}")
    qt = kg.add_const(f"{prod.inputs[0]}_T", np.ascontiguousarray(q.T))
    axis = None if prod.axis is None else 1 - prod.axis
    out = kg.fresh_name(f"{stem}/b_T")
    kg.types[out] = TensorType((q.shape[1], q.shape[0]), "float32")
    kg.append(
        DequantizeLinear(f"{stem}/dq_bT", (qt, prod.inputs[1], prod.inputs[2]), (out,), axis=axis)
    )
    return out


def _elementwise(lw: _Lowering, node: ir.Node) -> None:
    fn = _ELEMENTWISE[node.op_type]
    _check_broadcast(lw, [v.name for v in node.inputs if v is not None], node.outputs[0].name)
    attrs: tuple = ()
    if fn == "cast" and node.outputs[0].dtype == ir.DataType.BOOL:
        lower_nonlinear.cast_to_bool(lw, node)
        return
    if fn == "cast":
        attrs = (("to", lw.kg.types[node.outputs[0].name].dtype),)
    lw.emit(Vector(node.name, _names(node.inputs), (node.outputs[0].name,), fn=fn, attrs=attrs))


def _check_broadcast(lw: _Lowering, ins: list[str], out: str) -> None:
    """The inputs (tensor names) of an element-wise op must broadcast to its output shape."""
    shapes = [lw.kg.types[name].shape for name in ins]
    want = lw.kg.types[out].shape
    try:
        got = np.broadcast_shapes(*shapes, want)
    except ValueError:
        got = None
    if got != want:
        raise ModelError(
            f"{lw.where()}: input shapes {' and '.join(map(str, shapes))} must broadcast to the "
            f"output shape {want}"
        )


def _reshape(lw: _Lowering, node: ir.Node) -> None:
    out = node.outputs[0]
    shape = lw.kg.types[out.name].shape
    x = node.inputs[0]
    if node.op_type == "Reshape" and len(node.inputs) > 1 and node.inputs[1] is not None:
        target = lw.const_value(node.inputs[1])
        if target is None:
            raise UnsupportedError(f"{lw.where()}: the target shape must be a constant")
        if target.ndim != 1:
            raise ModelError(f"{lw.where()}: the target shape must be 1-D, not {target.shape}")
        check_reshape_target([int(v) for v in target], lw.where())
    if lw.kg.types[x.name].size != int(np.prod(shape, dtype=np.int64)):
        raise ModelError(
            f"{lw.where()}: reshape must keep {lw.kg.types[x.name].size} elements, not {shape}"
        )
    lw.emit(Reshape(node.name, (x.name,), (out.name,), shape=shape))


for _op_type, _fn in {
    "Constant": _constant,
    "QuantizeLinear": _quantize,
    "DequantizeLinear": _dequantize,
    "DynamicQuantizeLinear": _dynamic_quantize,
    "MatMul": _matmul,
    "MatMulInteger": _matmul_integer,
    "QLinearMatMul": _qlinear_matmul,
    "Gemm": _gemm,
    "Reshape": _reshape,
    "Flatten": _reshape,
    "Identity": _reshape,
    "Squeeze": _reshape,
    "Unsqueeze": _reshape,
    **dict.fromkeys(_ELEMENTWISE, _elementwise),
}.items():
    lowering(_op_type)(_fn)

# topic modules register their lowerings on import
# topic modules register their own lowerings (imported for the registration)
from codesign.frontend import (  # noqa: E402, F401
    lower_movement,  # noqa: E402, F401
    lower_nbits,
    lower_qoperator,
)


def lower_model(
    model: onnx.ModelProto, source: str = "model", host_nodes: frozenset[str] = frozenset()
) -> KernelGraph:
    """Lower ``model`` (checked and shape-inferred by :func:`load_model`) to primitive ops and
    Host partitions (:class:`~codesign.ir.host.Host`, see :mod:`codesign.frontend.host`).

    ``source`` names the model in error messages (usually the file path); ``host_nodes`` are
    node labels (names, or ``<OpType #index>`` for unnamed nodes) to place on the Host whatever
    their lowering (what the passes could not map, on a second try).
    """
    return _Lowering(model, source, host_nodes).run()
