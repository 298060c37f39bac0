"""Output types of onnxruntime contrib ops that onnx's shape inference does not know.

onnx's ``infer_shapes`` leaves the outputs of com.microsoft ops (and everything computed from
them) without a type. :func:`annotate` writes a ``value_info`` for the output of each contrib op
registered in :data:`RULES` whose inputs' types are known; :func:`codesign.frontend.load` then
runs onnx's inference again, until nothing new is learnt.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

#: a tensor's (element type, dims) or None when a dimension is not static
Type = tuple[int, list[int]]


def _matmul_nbits(node: onnx.NodeProto, types: dict[str, Type]) -> list[Type | None]:
    a = types.get(node.input[0])
    n = next((att.i for att in node.attribute if att.name == "N"), None)
    if a is None or n is None or not a[1]:
        return [None]
    return [(a[0], [*a[1][:-1], int(n)])]


def _input(node: onnx.NodeProto, types: dict[str, Type], i: int) -> Type | None:
    return types.get(node.input[i]) if len(node.input) > i and node.input[i] else None


def _qgemm(node: onnx.NodeProto, types: dict[str, Type]) -> list[Type | None]:
    a, b = _input(node, types, 0), _input(node, types, 3)
    if a is None or b is None or len(a[1]) != 2 or len(b[1]) != 2:
        return [None]
    attrs = {att.name: att.i for att in node.attribute}
    m = a[1][1] if attrs.get("transA", 0) else a[1][0]
    n = b[1][0] if attrs.get("transB", 0) else b[1][1]
    zy = _input(node, types, 8)
    has_y = len(node.input) > 7 and node.input[7]
    if has_y and zy is None:
        return [None]
    return [(zy[0] if has_y else onnx.TensorProto.FLOAT, [m, n])]


def _qlinear_add(node: onnx.NodeProto, types: dict[str, Type]) -> list[Type | None]:
    a, b, zc = _input(node, types, 0), _input(node, types, 3), _input(node, types, 7)
    if a is None or b is None:
        return [None]
    try:
        shape = list(np.broadcast_shapes(tuple(a[1]), tuple(b[1])))
    except ValueError:
        return [None]
    return [((zc or a)[0], [int(d) for d in shape])]


#: (domain, op type) -> the output types from the known input types
RULES: dict[tuple[str, str], Callable[[onnx.NodeProto, dict[str, Type]], list[Type | None]]] = {
    ("com.microsoft", "MatMulNBits"): _matmul_nbits,
    ("com.microsoft", "QGemm"): _qgemm,
    ("com.microsoft", "QLinearAdd"): _qlinear_add,
}


def _static(vi: onnx.ValueInfoProto) -> Type | None:
    t = vi.type.tensor_type
    if not t.HasField("shape") or not t.elem_type:
        return None
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return None if any(d is None for d in dims) else (t.elem_type, dims)


def annotate(model: onnx.ModelProto) -> bool:
    """Add value_info for contrib-op outputs whose types follow from their inputs; return
    whether any was added."""
    g = model.graph
    types: dict[str, Type] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        st = _static(vi)
        if st is not None:
            types.setdefault(vi.name, st)
    for t in g.initializer:
        types.setdefault(t.name, (t.data_type, list(t.dims)))
    added = False
    for node in g.node:
        rule = RULES.get((node.domain, node.op_type))
        if rule is None:
            continue
        for name, out in zip(node.output, rule(node, types), strict=False):
            if not name or out is None or name in types:
                continue
            g.value_info.append(helper.make_tensor_value_info(name, out[0], out[1]))
            types[name] = out
            added = True
    return added
