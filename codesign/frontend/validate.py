"""Structural checks of an untrusted ONNX model, before onnx's own checker sees it.

The onnx checker and shape inference catch most malformed graphs, but some of their messages do
not name the node or tensor, some malformations reach them as crashes (text fields that are not
UTF-8), and none of them bound the sizes a hostile model may declare. :func:`check_structure`
runs first and refuses, with a :class:`~codesign.errors.ModelError` naming the tensor or node:

- text fields that are not valid UTF-8;
- dimensions outside ``1..MAX_DIM`` or tensors of more than ``MAX_ELEMENTS`` elements, in graph
  inputs, outputs, value_info, initializers and Constant tensors (before anything is allocated);
- initializers whose stored data does not match their dims and element type;
- duplicate definitions of a tensor (single static assignment), node inputs that nothing
  defines, graph outputs that nothing produces, and cycles.

Nodes that are merely out of order (the graph is acyclic) are sorted topologically in place.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.descriptor import FieldDescriptor
from onnx import TensorProto, numpy_helper

from codesign.errors import ModelError, UnsupportedError
from codesign.ir.limits import MAX_DIM, MAX_ELEMENTS

#: Bits per element of the ONNX element types whose size is fixed (4-bit types pack two a byte).
BITS = {
    TensorProto.FLOAT: 32,
    TensorProto.UINT8: 8,
    TensorProto.INT8: 8,
    TensorProto.UINT16: 16,
    TensorProto.INT16: 16,
    TensorProto.INT32: 32,
    TensorProto.INT64: 64,
    TensorProto.BOOL: 8,
    TensorProto.FLOAT16: 16,
    TensorProto.DOUBLE: 64,
    TensorProto.UINT32: 32,
    TensorProto.UINT64: 64,
    TensorProto.COMPLEX64: 64,
    TensorProto.COMPLEX128: 128,
    TensorProto.BFLOAT16: 16,
    TensorProto.FLOAT8E4M3FN: 8,
    TensorProto.FLOAT8E4M3FNUZ: 8,
    TensorProto.FLOAT8E5M2: 8,
    TensorProto.FLOAT8E5M2FNUZ: 8,
    TensorProto.UINT4: 4,
    TensorProto.INT4: 4,
}

# The typed field that holds a tensor's values when raw_data is not used, and how many field
# entries one element takes (complex numbers take two).
_INT32_TYPES = {
    TensorProto.INT32,
    TensorProto.INT16,
    TensorProto.INT8,
    TensorProto.UINT16,
    TensorProto.UINT8,
    TensorProto.BOOL,
    TensorProto.FLOAT16,
    TensorProto.BFLOAT16,
    TensorProto.FLOAT8E4M3FN,
    TensorProto.FLOAT8E4M3FNUZ,
    TensorProto.FLOAT8E5M2,
    TensorProto.FLOAT8E5M2FNUZ,
}


# Narrow integer types stored one value per int32_data entry: the entries must fit the type.
_INT32_RANGES = {
    TensorProto.INT8: (-128, 127),
    TensorProto.UINT8: (0, 255),
    TensorProto.INT16: (-32768, 32767),
    TensorProto.UINT16: (0, 65535),
    TensorProto.BOOL: (0, 1),
}


def type_name(elem_type: int) -> str:
    """The ONNX name of an element type number, or ``"type <n>"`` for an unknown one."""
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"


def check_structure(model: onnx.ModelProto, path: Path) -> None:
    """Refuse malformed text, sizes, initializers and graph structure; sort nodes topologically.

    Raises :class:`ModelError` (:class:`UnsupportedError` for sparse initializers) naming the
    file and the tensor or node.
    """
    _check_text(model, path, "model")
    _check_opsets(model, path)
    g = model.graph
    if len(g.sparse_initializer):
        raise UnsupportedError(
            f"{path}: sparse initializer {g.sparse_initializer[0].values.name!r} is not "
            "supported; store it dense"
        )
    for vi in [*g.input, *g.output]:
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.elem_type not in BITS:
            raise ModelError(
                f"{path}: graph {'input' if vi in g.input else 'output'} {vi.name!r} must "
                f"declare a numeric element type, not {type_name(t.elem_type)}"
            )
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            dims = [
                d.dim_value if d.HasField("dim_value") else None
                for d in vi.type.tensor_type.shape.dim
            ]
            check_dims(dims, f"{path}: tensor {vi.name!r}")
    for t in g.initializer:
        check_tensor(t, f"{path}: initializer {t.name!r}")
    for n in g.node:
        for a in n.attribute:
            for t in [a.t] if a.HasField("t") else []:
                check_tensor(t, f"{path}: node {n.name or '<unnamed>'!r} ({n.op_type}) tensor")
            for t in a.tensors:
                check_tensor(t, f"{path}: node {n.name or '<unnamed>'!r} ({n.op_type}) tensor")
    _check_names(g, path)
    _sort_nodes(g, path)


def check_reshape_target(values: list[int], where: str) -> None:
    """Reshape target entries: -1 (at most once), 0 (copy a dimension) or 1..MAX_DIM."""
    bad = [v for v in values if v < -1 or v > MAX_DIM]
    if bad or values.count(-1) > 1:
        raise ModelError(
            f"{where}: the target shape must list dimensions in 1..{MAX_DIM} (0 to copy one, "
            f"-1 once to infer one), not {values[:8]}"
        )


def check_reshape_targets(g: onnx.GraphProto, path: Path) -> None:
    """Constant Reshape targets, checked before shape inference sizes anything from them (and
    after external data is inlined: this reads initializer values)."""
    consts = {t.name: t for t in g.initializer if t.data_location != TensorProto.EXTERNAL}
    for n in g.node:
        if n.op_type != "Reshape" or len(n.input) < 2 or n.input[1] not in consts:
            continue
        t = consts[n.input[1]]
        if t.data_type != TensorProto.INT64 or len(t.dims) != 1:
            continue  # the checker and shape inference name the type error
        values = [int(v) for v in numpy_helper.to_array(t).reshape(-1)]
        check_reshape_target(values, f"{path}: {_node_label(n)}")


def _check_opsets(model: onnx.ModelProto, path: Path) -> None:
    """The default domain's opset must be one onnx knows: newer ones may change op semantics."""
    newest = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and not 1 <= o.version <= newest:
            raise ModelError(
                f"{path}: the ONNX opset must lie in 1..{newest} (the newest onnx "
                f"{onnx.__version__} knows), not {o.version}"
            )


def check_dims(dims: list[int | None], where: str, empty_ok: bool = False) -> int:
    """Check static dims (None for a dynamic one) against the limits; return the element count.

    ``where`` starts the message, e.g. ``"model.onnx: tensor 'x'"``. ``empty_ok`` admits
    dimensions of 0: a stored tensor (initializer, Constant value) may be empty in ONNX, and
    canonicalisation folds empty tensors away before anything is lowered.
    """
    count = 1
    low = 0 if empty_ok else 1
    for i, d in enumerate(dims):
        if d is None:
            continue
        if not low <= d <= MAX_DIM:
            raise ModelError(f"{where} dimension {i} must lie in {low}..{MAX_DIM}, not {d}")
        count *= d
    if count > MAX_ELEMENTS:
        raise ModelError(
            f"{where} must have at most {MAX_ELEMENTS} elements, not {count} "
            f"(shape {'x'.join('?' if d is None else str(d) for d in dims)})"
        )
    return count


def tensor_nbytes(t: TensorProto, count: int) -> int | None:
    """Bytes of ``count`` elements of ``t``'s element type, or None for types of no fixed size."""
    bits = BITS.get(t.data_type)
    return None if bits is None else (count * bits + 7) // 8


def check_tensor(t: TensorProto, where: str) -> None:
    """Check a TensorProto's dims (empty tensors are legal), element type and (inline) data
    size before it is decoded."""
    count = check_dims(list(t.dims), where, empty_ok=True)
    if t.data_type not in BITS and t.data_type != TensorProto.STRING:
        raise ModelError(f"{where} has an unknown element type ({type_name(t.data_type)})")
    if t.data_location == TensorProto.EXTERNAL:
        return  # checked when the external data is read
    if t.data_type == TensorProto.STRING:
        have, need = len(t.string_data), count
        unit = "strings"
    elif t.HasField("raw_data"):
        have, need, unit = len(t.raw_data), tensor_nbytes(t, count), "bytes"
    else:
        have, need, unit = _typed_len(t), _typed_need(t, count), "values"
    if have != need:
        raise ModelError(
            f"{where} holds {have} {unit} of data, but its shape "
            f"{list(t.dims)} of {type_name(t.data_type)} needs {need}"
        )
    lo, hi = _INT32_RANGES.get(t.data_type, (None, None))
    if lo is not None and not t.HasField("raw_data") and len(t.int32_data):
        values = np.asarray(t.int32_data, dtype=np.int64)
        outside = values[(values < lo) | (values > hi)]
        if outside.size:
            bad = int(outside[0])
            raise ModelError(
                f"{where} values must lie in {lo}..{hi} ({type_name(t.data_type)}), not {bad}"
            )


def _typed_len(t: TensorProto) -> int:
    dt = t.data_type
    if dt == TensorProto.FLOAT:
        return len(t.float_data)
    if dt in (TensorProto.DOUBLE, TensorProto.COMPLEX128):
        return len(t.double_data)
    if dt == TensorProto.COMPLEX64:
        return len(t.float_data)
    if dt == TensorProto.INT64:
        return len(t.int64_data)
    if dt in (TensorProto.UINT32, TensorProto.UINT64):
        return len(t.uint64_data)
    return len(t.int32_data)


def _typed_need(t: TensorProto, count: int) -> int:
    if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        return 2 * count
    if t.data_type in (TensorProto.INT4, TensorProto.UINT4):
        return (count + 1) // 2
    return count


def _check_text(msg, path: Path, where: str) -> None:
    """Every ``string`` field must hold UTF-8 text (protobuf hands back bytes otherwise)."""
    for field, value in msg.ListFields():
        name = f"{where}.{field.name}"
        repeated = _is_repeated(field)
        if field.type == FieldDescriptor.TYPE_STRING:
            for v in value if repeated else [value]:
                if not isinstance(v, str):
                    raise ModelError(
                        f"{path}: text field {name} must be valid UTF-8, not {bytes(v)[:40]!r}"
                    )
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if repeated:
                for i, v in enumerate(value):
                    _check_text(v, path, f"{name}[{i}]")
            else:
                _check_text(value, path, name)


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6; ``label`` is deprecated there
    return flag if isinstance(flag, bool) else field.label == FieldDescriptor.LABEL_REPEATED


def _node_label(n: onnx.NodeProto) -> str:
    return f"node {n.name or '<unnamed>'!r} ({n.op_type})"


def _check_names(g: onnx.GraphProto, path: Path) -> None:
    """Single static assignment, every node input defined, every graph output produced."""
    defined: dict[str, str] = {}
    for t in g.initializer:
        if t.name in defined:
            raise ModelError(f"{path}: initializer {t.name!r} is defined twice")
        defined[t.name] = "an initializer"
    for i in g.input:
        if i.name in defined and defined[i.name] != "an initializer":
            raise ModelError(f"{path}: graph input {i.name!r} is declared twice")
        defined.setdefault(i.name, "a graph input")
    for n in g.node:
        for o in n.output:
            if not o:
                continue
            if o in defined:
                raise ModelError(
                    f"{path}: {_node_label(n)} output {o!r} is already defined by "
                    f"{defined[o]}; every tensor must be defined once"
                )
            defined[o] = _node_label(n)
    for n in g.node:
        for name in n.input:
            if name and name not in defined:
                raise ModelError(
                    f"{path}: {_node_label(n)} input {name!r} is not defined: it must be a "
                    "graph input, an initializer or the output of a node"
                )
    for o in g.output:
        if o.name not in defined:
            raise ModelError(f"{path}: graph output {o.name!r} is not produced by any node")


def _sort_nodes(g: onnx.GraphProto, path: Path) -> None:
    """Order the nodes topologically (stable); refuse a cycle, naming the nodes on it."""
    nodes = list(g.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in n.input if x in producer} for n in nodes]
    users: list[list[int]] = [[] for _ in nodes]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    pending = [len(ds) for ds in deps]
    ready = deque(i for i, p in enumerate(pending) if p == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                ready.append(u)
    if len(order) < len(nodes):
        cycle = _find_cycle(deps, {i for i, p in enumerate(pending) if p > 0})[::-1]
        names = " -> ".join(_node_label(nodes[i]) for i in cycle)
        raise ModelError(f"{path}: the graph must be acyclic, but it has a cycle: {names}")
    if order != sorted(order):
        del g.node[:]
        g.node.extend(nodes[i] for i in order)


def _find_cycle(deps: list[set[int]], left: set[int]) -> list[int]:
    """A cycle among the nodes ``left`` (each has a dependency in ``left``), closed."""
    start = min(left)
    seen: dict[int, int] = {}
    path: list[int] = []
    i = start
    while i not in seen:
        seen[i] = len(path)
        path.append(i)
        i = min(d for d in deps[i] if d in left)
    return [*path[seen[i] :], i]
