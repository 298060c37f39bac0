"""ONNX lowerings of the nonlinear ops and the mask ops, onto the ``nonlinear`` and ``rownorm``
kinds (:mod:`codesign.kinds.nonlinear`, :mod:`codesign.kinds.rownorm`).

Element-wise: Erf, Tanh, Sigmoid, Exp, Sqrt, Reciprocal, Neg, Not, Div (float), Pow (a constant
exponent in :data:`codesign.sim.nonlinear.POW_EXPONENTS`), Equal, Where (Expand is a data movement:
:mod:`codesign.frontend.lower_movement`), Gelu (opset 20, approximate none/tanh), com.microsoft Gelu (erf form) and FastGelu
(tanh form, optional bias), Cast to bool (``nonzero``). Over the last axis: Softmax,
LayerNormalization, RMSNormalization (opset 23), com.microsoft SkipLayerNormalization (adds,
then LayerNorm), ReduceMean (last axis). (onnxruntime's SimplifiedLayerNormalization lives in
the default domain, where the onnx checker of the loader refuses it: not lowered.) Anything
else of these ops (another axis, a used Mean/InvStdDev output, an integer Div) is refused with
one line naming the node. bool tensors are uint8 0/1 in the KernelGraph.

The lowerings only read the lowering context ``lw`` (:class:`codesign.frontend.lower._Lowering`)
through its public helpers (``kg``, ``where``, ``emit``, ``need_const``); they register through
:func:`codesign.frontend.lowerings.lowering`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx_ir as ir

from codesign.errors import ModelError, UnsupportedError
from codesign.frontend.lowerings import lowering
from codesign.ir.graph import DequantizeLinear, Reshape, TensorType, Vector
from codesign.ir.nonlinear import Nonlinear, RowNorm
from codesign.sim.nonlinear import POW_EXPONENTS


def _attr(node: ir.Node, name: str, default: Any = None) -> Any:
    a = node.attributes.get(name)
    return default if a is None else a.value


def _name(v: ir.Value | None) -> str:
    return "" if v is None else v.name


def _opset(lw: Any, domain: str = "") -> int:
    return int(lw.model.opset_imports.get(domain, lw.model.opset_imports.get("ai.onnx", 0)))


def _float_inputs(lw: Any, node: ir.Node, count: int | None = None) -> None:
    """The first ``count`` inputs (all by default) must be float32."""
    for v in list(node.inputs)[:count]:
        if v is not None and lw.kg.types[v.name].dtype != "float32":
            raise UnsupportedError(
                f"{lw.where()}: {node.op_type} takes float32 inputs here, not "
                f"{lw.kg.types[v.name].dtype} ({v.name!r})"
            )


def _broadcast(lw: Any, ins: list[str], out: str, extra: tuple[int, ...] | None = None) -> None:
    shapes = [lw.kg.types[n].shape for n in ins] + ([extra] if extra is not None else [])
    want = lw.kg.types[out].shape
    try:
        ok = np.broadcast_shapes(*shapes, want) == want
    except ValueError:
        ok = False
    if not ok:
        raise ModelError(
            f"{lw.where()}: input shapes {' and '.join(map(str, shapes))} must broadcast to the "
            f"output shape {want}"
        )


def _emit(lw: Any, node: ir.Node, fn: str, attrs: tuple = (), inputs: tuple | None = None) -> None:
    ins = tuple(_name(v) for v in node.inputs) if inputs is None else inputs
    lw.emit(Nonlinear(node.name, ins, (node.outputs[0].name,), fn=fn, attrs=attrs))


_UNARY = {
    "Erf": "erf",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Exp": "exp",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
}


@lowering(*_UNARY)
def _unary(lw: Any, node: ir.Node) -> None:
    _float_inputs(lw, node)
    _emit(lw, node, _UNARY[node.op_type])


@lowering("Neg")
def _neg(lw: Any, node: ir.Node) -> None:
    _emit(lw, node, "neg")


@lowering("Not")
def _not(lw: Any, node: ir.Node) -> None:
    _emit(lw, node, "not")


def cast_to_bool(lw: Any, node: ir.Node) -> None:
    """Cast(x, to=BOOL): non-zero -> 1 (called by the core Cast lowering)."""
    _emit(lw, node, "nonzero")


@lowering("Div")
def _div(lw: Any, node: ir.Node) -> None:
    if lw.kg.types[node.outputs[0].name].dtype != "float32":
        raise UnsupportedError(
            f"{lw.where()}: Div of {lw.kg.types[node.outputs[0].name].dtype} tensors is not "
            "supported; only float32 division is"
        )
    _float_inputs(lw, node)
    _broadcast(lw, [v.name for v in node.inputs], node.outputs[0].name)
    _emit(lw, node, "div")


@lowering("Pow")
def _pow(lw: Any, node: ir.Node) -> None:
    _float_inputs(lw, node, 1)
    x, p = node.inputs
    value = lw.const_value(p)
    if value is None or value.size != 1:
        raise UnsupportedError(
            f"{lw.where()}: Pow needs a constant single exponent (one of {POW_EXPONENTS})"
        )
    e = float(value.reshape(-1)[0])
    if e not in POW_EXPONENTS:
        raise UnsupportedError(
            f"{lw.where()}: Pow exponent must be one of {POW_EXPONENTS}, not {e}"
        )
    _broadcast(lw, [x.name, p.name], node.outputs[0].name)
    _emit(lw, node, "pow")


@lowering("Equal")
def _equal(lw: Any, node: ir.Node) -> None:
    _broadcast(lw, [v.name for v in node.inputs], node.outputs[0].name)
    _emit(lw, node, "equal")


@lowering("Where")
def _where(lw: Any, node: ir.Node) -> None:
    _broadcast(lw, [v.name for v in node.inputs], node.outputs[0].name)
    _emit(lw, node, "where")


@lowering("Gelu")
def _gelu(lw: Any, node: ir.Node) -> None:
    approximate = str(_attr(node, "approximate", "none"))
    if approximate not in ("none", "tanh"):
        raise ModelError(f"{lw.where()}: approximate must be 'none' or 'tanh', not {approximate!r}")
    _float_inputs(lw, node)
    _emit(lw, node, "gelu", (("approximate", approximate),))


@lowering("Gelu", domain="com.microsoft")
def _ms_gelu(lw: Any, node: ir.Node) -> None:
    _float_inputs(lw, node)
    _emit(lw, node, "gelu", (("approximate", "none"),))


@lowering("FastGelu", domain="com.microsoft")
def _fast_gelu(lw: Any, node: ir.Node) -> None:
    """FastGelu(X[, bias]) = tanh-form GELU of X + bias."""
    _float_inputs(lw, node)
    x = node.inputs[0].name
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        x = _add(lw, node, x, node.inputs[1].name, "bias")
    _emit(lw, node, "gelu", (("approximate", "tanh"),), inputs=(x,))


def _add(lw: Any, node: ir.Node, a: str, b: str, what: str) -> str:
    out = lw.kg.fresh_name(f"{node.name or node.outputs[0].name}/{what}")
    lw.kg.types[out] = TensorType(lw.kg.types[a].shape, "float32")
    _broadcast(lw, [a, b], out)
    lw.emit(Vector(f"{node.name}/{what}", (a, b), (out,), fn="add"))
    return out


def _last_axis(lw: Any, node: ir.Node, axis: int, rank: int) -> None:
    if not -rank <= axis < rank:
        raise ModelError(f"{lw.where()}: axis must lie in [{-rank}, {rank}), not {axis}")
    if axis % rank != rank - 1:
        raise UnsupportedError(
            f"{lw.where()}: {node.op_type} over axis {axis} is not supported; only the last axis "
            f"({rank - 1} or -1) is"
        )


def _unused_extra_outputs(lw: Any, node: ir.Node, keep: int = 1) -> None:
    _check_unused(lw, node, list(node.outputs[keep:]))


def _check_unused(lw: Any, node: ir.Node, values: list) -> None:
    outputs = lw.model.graph.outputs
    for v in values:
        if v is not None and v.name and (v.uses() or v in outputs):
            raise UnsupportedError(
                f"{lw.where()}: output {v.name!r} of {node.op_type} is used; only the "
                "normalised output is supported"
            )


def _params(lw: Any, node: ir.Node, params: list[ir.Value | None], n: int) -> tuple[str, ...]:
    names = []
    for v in params:
        if v is None or not v.name:
            names.append("")
            continue
        _constant_param(lw, node, v)
        shape = lw.kg.types[v.name].shape
        if math.prod(shape) != n or (shape and shape[-1] != n):
            raise UnsupportedError(
                f"{lw.where()}: {node.op_type} parameter {v.name!r} must hold {n} values along "
                f"the last axis, not shape {shape}"
            )
        names.append(v.name)
    while names and not names[-1]:
        names.pop()
    if "" in names:  # beta without gamma: gamma of ones
        i = names.index("")
        names[i] = lw.kg.add_const(f"{node.name or 'norm'}/ones", np.ones((n,), np.float32))
    return tuple(names)


def _constant_param(lw: Any, node: ir.Node, v: ir.Value) -> None:
    """A norm's gamma/beta must be a constant, or the DequantizeLinear of constants that a
    quantizer wrote (folded into a float constant by the passes)."""
    if v.name in lw.kg.constants:
        return
    prod = lw.kg.producer(v.name)
    if isinstance(prod, DequantizeLinear) and all(
        not i or i in lw.kg.constants for i in prod.inputs
    ):
        return
    raise UnsupportedError(
        f"{lw.where()}: {node.op_type} parameter {v.name!r} must be a constant initializer "
        "(or a dequantised one)"
    )


#: LayerNormalization's and RMSNormalization's default epsilon (ONNX spec); the lowering writes
#: the epsilon into every norm layer, so nothing downstream has a default of its own
NORM_EPSILON = 1e-5


def _row(
    lw: Any, node: ir.Node, fn: str, x: str, params: tuple[str, ...], eps: float | None, out: str
) -> None:
    attrs = (("epsilon", float(eps)),) if eps is not None else ()
    lw.emit(RowNorm(node.name, (x, *params), (out,), fn=fn, attrs=attrs))


@lowering("Softmax")
def _softmax(lw: Any, node: ir.Node) -> None:
    _float_inputs(lw, node)
    x = node.inputs[0].name
    rank = len(lw.kg.types[x].shape)
    default = -1 if _opset(lw) >= 13 else 1
    _last_axis(lw, node, int(_attr(node, "axis", default)), rank)
    _row(lw, node, "softmax", x, (), None, node.outputs[0].name)


@lowering("LayerNormalization")
def _layernorm(lw: Any, node: ir.Node) -> None:
    _float_inputs(lw, node)
    ins = list(node.inputs) + [None] * (3 - len(node.inputs))
    x = ins[0].name
    shape = lw.kg.types[x].shape
    _last_axis(lw, node, int(_attr(node, "axis", -1)), len(shape))
    _unused_extra_outputs(lw, node)
    params = _params(lw, node, ins[1:3], shape[-1])
    _row(
        lw, node, "layernorm", x, params, _attr(node, "epsilon", NORM_EPSILON), node.outputs[0].name
    )


@lowering("RMSNormalization")
def _rmsnorm(lw: Any, node: ir.Node) -> None:
    _float_inputs(lw, node)
    x = node.inputs[0].name
    shape = lw.kg.types[x].shape
    _last_axis(lw, node, int(_attr(node, "axis", -1)), len(shape))
    params = _params(lw, node, list(node.inputs[1:2]), shape[-1])
    _row(lw, node, "rmsnorm", x, params, _attr(node, "epsilon", NORM_EPSILON), node.outputs[0].name)


@lowering("SkipLayerNormalization", domain="com.microsoft")
def _skip_layernorm(lw: Any, node: ir.Node) -> None:
    """SkipLayerNormalization(input, skip, gamma[, beta[, bias]]): LayerNorm of
    input + skip (+ bias) over the last axis; the 4th output is that sum."""
    _float_inputs(lw, node)
    ins = list(node.inputs) + [None] * (5 - len(node.inputs))
    x, skip, gamma, beta, bias = ins
    shape = lw.kg.types[x.name].shape
    outs = list(node.outputs) + [None] * (4 - len(node.outputs))
    _check_unused(lw, node, outs[1:3])
    total = _add(lw, node, x.name, skip.name, "skip")
    if bias is not None and bias.name:
        total = _add(lw, node, total, bias.name, "bias")
    if outs[3] is not None and outs[3].name:  # input_skip_bias_sum: the sum itself (a view)
        shape_out = lw.kg.types[outs[3].name].shape
        lw.emit(Reshape(f"{node.name}/sum", (total,), (outs[3].name,), shape=shape_out))
    params = _params(lw, node, [gamma, beta], shape[-1])
    _row(lw, node, "layernorm", total, params, _attr(node, "epsilon", 1e-12), outs[0].name)


@lowering("ReduceMean")
def _reduce_mean(lw: Any, node: ir.Node) -> None:
    _float_inputs(lw, node, 1)
    x = node.inputs[0].name
    shape = lw.kg.types[x].shape
    axes = _attr(node, "axes")
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = lw.need_const(node.inputs[1], "the ReduceMean axes").reshape(-1).tolist()
    if axes is None or len(list(axes)) != 1:
        raise UnsupportedError(f"{lw.where()}: ReduceMean is supported over the last axis only")
    _last_axis(lw, node, int(list(axes)[0]), len(shape))
    out = node.outputs[0].name
    if int(_attr(node, "keepdims", 1)):
        _row(lw, node, "reducemean", x, (), None, out)
        return
    kept = lw.kg.fresh_name(f"{node.name or out}/keepdims")
    lw.kg.types[kept] = TensorType((*shape[:-1], 1), "float32")
    _row(lw, node, "reducemean", x, (), None, kept)
    lw.emit(Reshape(f"{node.name}/squeeze", (kept,), (out,), shape=lw.kg.types[out].shape))


@lowering("ConstantOfShape")
def _constant_of_shape(lw: Any, node: ir.Node) -> None:
    """ConstantOfShape with a constant shape (mask fills): a constant of the output's shape."""
    shape = lw.need_const(node.inputs[0], "the ConstantOfShape shape")
    value = _attr(node, "value")
    fill = np.zeros((1,), np.float32) if value is None else np.asarray(value.numpy())
    if fill.dtype == np.bool_:
        fill = fill.astype(np.uint8)
    out = node.outputs[0].name
    dims = tuple(int(d) for d in shape.reshape(-1))
    if np.issubdtype(fill.dtype, np.floating) and np.isnan(fill).any():
        raise ModelError(f"{lw.where()}: the fill value must not be NaN")
    lw.kg.constants[out] = np.full(dims, fill.reshape(-1)[0], dtype=fill.dtype)
    lw.kg.types[out] = TensorType(dims, lw.kg.types[out].dtype)
