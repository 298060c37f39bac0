"""Mutations of valid ONNX models for the fuzz test, as hypothesis strategies.

A mutation is a small frozen dataclass that says what to change (``SetDim(target=3, dim=1,
value=-1)``), so hypothesis shrinks to, and prints, readable failing examples. Targets are
indices taken modulo the number of candidates in the model at hand, so every mutation applies to
every base model. :func:`apply` turns a base model's bytes and a list of mutations into the bytes
of the mutated file; byte-level mutations run last, on the serialized model.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

#: Dimensions worth trying: edge cases, the limits, and a few ordinary sizes.
DIMS = st.one_of(
    st.sampled_from([0, -1, -7, 1, 2, 3, 7, 16, 17, 2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1]),
    st.integers(min_value=1, max_value=300),
)
#: Float values worth trying in weights and scales.
FLOATS = st.one_of(
    st.sampled_from(
        [0.0, -0.0, -1.0, 1.0, math.nan, math.inf, -math.inf, 1e-45, 1e-38, 3.4e38, 1e30, -1e30]
    ),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)
#: Integer values worth trying in zero points, attributes and integer weights.
INTS = st.one_of(
    st.sampled_from([0, 1, -1, 2, -2, 3, 127, 128, -128, -129, 255, 256, 32767, -32768, 65535]),
    st.sampled_from([2**31 - 1, -(2**31), 2**32, 2**40, 2**63 - 1, -(2**63)]),
    st.integers(min_value=-300, max_value=300),
)
ELEM_TYPES = st.sampled_from(
    [
        TensorProto.FLOAT,
        TensorProto.UINT8,
        TensorProto.INT8,
        TensorProto.UINT16,
        TensorProto.INT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.STRING,
        TensorProto.BOOL,
        TensorProto.FLOAT16,
        TensorProto.DOUBLE,
        TensorProto.UINT32,
        TensorProto.UINT64,
        TensorProto.BFLOAT16,
        TensorProto.FLOAT8E4M3FN,
        TensorProto.INT4,
        TensorProto.UINT4,
        0,
        99,
    ]
)
OP_TYPES = st.sampled_from(
    [
        "MatMul",
        "Gemm",
        "Add",
        "Sub",
        "Mul",
        "Relu",
        "Cast",
        "Reshape",
        "Flatten",
        "Identity",
        "Squeeze",
        "Unsqueeze",
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "QLinearMatMul",
        "Constant",
        "Transpose",
        "Softmax",
        "Div",
        "If",
        "Loop",
        "NoSuchOp",
    ]
)
ATTR_NAMES = st.sampled_from(
    [
        "axis",
        "transA",
        "transB",
        "alpha",
        "beta",
        "to",
        "block_size",
        "output_dtype",
        "saturate",
        "allowzero",
        "axes",
        "perm",
        "value",
        "value_float",
        "value_ints",
        "bogus",
    ]
)


def _pick(seq, i: int):
    return seq[i % len(seq)] if len(seq) else None


def _graph_values(g: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    return [*g.input, *g.output, *g.value_info]


def _tensor_names(g: onnx.GraphProto) -> list[str]:
    names = [i.name for i in g.input] + [t.name for t in g.initializer]
    for n in g.node:
        names.extend(o for o in n.output if o)
    return names


@dataclass(frozen=True)
class SetDim:
    """Set dimension ``dim`` of a graph input/output/value_info to ``value`` (int or symbol)."""

    target: int
    dim: int
    value: int | str

    def apply(self, m: onnx.ModelProto) -> None:
        v = _pick(_graph_values(m.graph), self.target)
        if v is None or not v.type.HasField("tensor_type"):
            return
        dims = v.type.tensor_type.shape.dim
        if not len(dims):
            dims.add()
        d = dims[self.dim % len(dims)]
        d.Clear()
        if isinstance(self.value, str):
            d.dim_param = self.value
        elif -(2**63) <= self.value < 2**63:
            d.dim_value = self.value


@dataclass(frozen=True)
class SetRank:
    """Drop or add a dimension of a graph input/output, or remove its shape altogether."""

    target: int
    change: int  # -1 drop last, +1 add a 1, 0 remove the shape

    def apply(self, m: onnx.ModelProto) -> None:
        v = _pick(_graph_values(m.graph), self.target)
        if v is None or not v.type.HasField("tensor_type"):
            return
        t = v.type.tensor_type
        if self.change == 0:
            t.ClearField("shape")
        elif self.change < 0 and len(t.shape.dim):
            del t.shape.dim[-1]
        else:
            t.shape.dim.add().dim_value = 1


@dataclass(frozen=True)
class SetElemType:
    """Change the element type of a graph input/output/value_info."""

    target: int
    elem_type: int

    def apply(self, m: onnx.ModelProto) -> None:
        v = _pick(_graph_values(m.graph), self.target)
        if v is not None:
            v.type.tensor_type.elem_type = self.elem_type


@dataclass(frozen=True)
class SetInitDims:
    """Replace an initializer's dims without touching its data."""

    target: int
    dims: tuple[int, ...]

    def apply(self, m: onnx.ModelProto) -> None:
        t = _pick(m.graph.initializer, self.target)
        if t is None:
            return
        del t.dims[:]
        t.dims.extend(d for d in self.dims if -(2**63) <= d < 2**63)


@dataclass(frozen=True)
class SetInitType:
    """Change an initializer's data_type without converting its data."""

    target: int
    elem_type: int

    def apply(self, m: onnx.ModelProto) -> None:
        t = _pick(m.graph.initializer, self.target)
        if t is not None:
            t.data_type = self.elem_type


@dataclass(frozen=True)
class SetInitValue:
    """Set element ``index`` (or all, when ``everywhere``) of an initializer to ``value``."""

    target: int
    index: int
    value: float
    everywhere: bool = False

    def apply(self, m: onnx.ModelProto) -> None:
        t = _pick(m.graph.initializer, self.target)
        if t is not None:
            _set_values(t, self.index, self.value, self.everywhere)


@dataclass(frozen=True)
class SetQuantParam:
    """Set a scale or zero point initializer (by name) to ``value`` everywhere."""

    target: int
    value: float

    def apply(self, m: onnx.ModelProto) -> None:
        params = [t for t in m.graph.initializer if "scale" in t.name or "zero_point" in t.name]
        t = _pick(params, self.target)
        if t is not None:
            _set_values(t, 0, self.value, True)


@dataclass(frozen=True)
class DropInitializer:
    target: int

    def apply(self, m: onnx.ModelProto) -> None:
        if len(m.graph.initializer):
            del m.graph.initializer[self.target % len(m.graph.initializer)]


@dataclass(frozen=True)
class MakeExternal:
    """Point an initializer at external data (``location``), dropping its inline data."""

    target: int
    location: str
    offset: int = 0
    length: int | None = None

    def apply(self, m: onnx.ModelProto) -> None:
        t = _pick(m.graph.initializer, self.target)
        if t is None:
            return
        t.ClearField("raw_data")
        for f in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
            t.ClearField(f)
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        entries = {"location": self.location, "offset": str(self.offset)}
        if self.length is not None:
            entries["length"] = str(self.length)
        for k, v in entries.items():
            e = t.external_data.add()
            e.key, e.value = k, v


@dataclass(frozen=True)
class SetAttr:
    """Set (or add) attribute ``name`` of node ``target`` to an int, float, ints or tensor."""

    target: int
    name: str
    value: int | float | tuple[int, ...]

    def apply(self, m: onnx.ModelProto) -> None:
        n = _pick(m.graph.node, self.target)
        if n is None:
            return
        for i, a in enumerate(n.attribute):
            if a.name == self.name:
                del n.attribute[i]
                break
        v = self.value
        if isinstance(v, int) and not -(2**63) <= v < 2**63:
            return
        if isinstance(v, tuple):
            v = [x for x in v if -(2**63) <= x < 2**63]
        if self.name == "value" and not isinstance(v, list):
            dtype = TensorProto.FLOAT if isinstance(v, float) else TensorProto.INT64
            v = helper.make_tensor("value", dtype, [], [v])
        kind = onnx.AttributeProto.INTS if isinstance(v, list) else None
        n.attribute.append(helper.make_attribute(self.name, v, attr_type=kind))


@dataclass(frozen=True)
class DropAttr:
    target: int

    def apply(self, m: onnx.ModelProto) -> None:
        n = _pick(m.graph.node, self.target)
        if n is not None and len(n.attribute):
            del n.attribute[0]


@dataclass(frozen=True)
class SetInput:
    """Rewire input ``slot`` of node ``target`` to another tensor of the graph (or a fresh name,
    or the empty name of an omitted optional input)."""

    target: int
    slot: int
    source: int
    fresh: bool = False

    def apply(self, m: onnx.ModelProto) -> None:
        n = _pick(m.graph.node, self.target)
        if n is None:
            return
        names = _tensor_names(m.graph)
        new = "undefined_tensor" if self.fresh else _pick(names + [""], self.source)
        if not len(n.input):
            n.input.append(new)
        else:
            n.input[self.slot % len(n.input)] = new


@dataclass(frozen=True)
class SetArity:
    """Drop the last input of a node, or append one more (an existing tensor)."""

    target: int
    grow: bool
    source: int = 0

    def apply(self, m: onnx.ModelProto) -> None:
        n = _pick(m.graph.node, self.target)
        if n is None:
            return
        if self.grow:
            n.input.append(_pick(_tensor_names(m.graph), self.source))
        elif len(n.input):
            del n.input[-1]


@dataclass(frozen=True)
class SetOutput:
    """Rename output 0 of a node to an existing tensor name (SSA violation) or the graph output."""

    target: int
    source: int

    def apply(self, m: onnx.ModelProto) -> None:
        n = _pick(m.graph.node, self.target)
        if n is not None and len(n.output):
            n.output[0] = _pick(_tensor_names(m.graph), self.source)


@dataclass(frozen=True)
class SetOpType:
    target: int
    op_type: str

    def apply(self, m: onnx.ModelProto) -> None:
        n = _pick(m.graph.node, self.target)
        if n is not None:
            n.op_type = self.op_type


@dataclass(frozen=True)
class SetDomain:
    target: int
    domain: str

    def apply(self, m: onnx.ModelProto) -> None:
        n = _pick(m.graph.node, self.target)
        if n is not None:
            n.domain = self.domain


@dataclass(frozen=True)
class MoveNode:
    """Move node ``target`` to position ``to`` (breaks topological order or makes cycles with
    other rewirings), or duplicate it there."""

    target: int
    to: int
    duplicate: bool = False

    def apply(self, m: onnx.ModelProto) -> None:
        nodes = list(m.graph.node)
        if not nodes:
            return
        node = onnx.NodeProto()
        node.CopyFrom(nodes[self.target % len(nodes)])
        if not self.duplicate:
            del nodes[self.target % len(nodes)]
        nodes.insert(self.to % (len(nodes) + 1), node)
        del m.graph.node[:]
        m.graph.node.extend(nodes)


@dataclass(frozen=True)
class DropNode:
    target: int

    def apply(self, m: onnx.ModelProto) -> None:
        if len(m.graph.node):
            del m.graph.node[self.target % len(m.graph.node)]


@dataclass(frozen=True)
class SetOpset:
    version: int
    ir_version: int | None = None

    def apply(self, m: onnx.ModelProto) -> None:
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = self.version
        if self.ir_version is not None:
            m.ir_version = self.ir_version


@dataclass(frozen=True)
class FlipBytes:
    """Overwrite bytes at relative positions (0..1) of the serialized model."""

    positions: tuple[float, ...]
    values: tuple[int, ...]

    def apply_bytes(self, data: bytes) -> bytes:
        b = bytearray(data)
        for p, v in zip(self.positions, self.values, strict=False):
            if b:
                b[min(int(p * len(b)), len(b) - 1)] = v
        return bytes(b)


@dataclass(frozen=True)
class CutBytes:
    """Truncate the serialized model at a relative position, or splice garbage in there."""

    position: float
    insert: bytes = b""

    def apply_bytes(self, data: bytes) -> bytes:
        i = int(self.position * len(data))
        return data[:i] + self.insert + (data[i:] if self.insert else b"")


def _set_values(t: TensorProto, index: int, value: float, everywhere: bool) -> None:
    """Write ``value`` into a tensor's data in its own element type (best effort, no checks)."""
    fmt = {
        TensorProto.FLOAT: "<f",
        TensorProto.INT8: "<b",
        TensorProto.UINT8: "<B",
        TensorProto.INT16: "<h",
        TensorProto.UINT16: "<H",
        TensorProto.INT32: "<i",
        TensorProto.INT64: "<q",
    }.get(t.data_type)
    if fmt is None:
        return
    size = struct.calcsize(fmt)
    if fmt == "<f":
        packed = struct.pack(fmt, value)
    else:
        if not math.isfinite(value):
            return
        lo, hi = _int_limits(fmt)
        packed = struct.pack(fmt, min(max(int(value), lo), hi))
    if t.raw_data:
        raw = bytearray(t.raw_data)
        count = len(raw) // size
        if not count:
            return
        idx = range(count) if everywhere else [index % count]
        for i in idx:
            raw[i * size : (i + 1) * size] = packed
        t.raw_data = bytes(raw)
        return
    field = {
        "<f": t.float_data,
        "<q": t.int64_data,
    }.get(fmt, t.int32_data)
    if not len(field):
        return
    (v,) = struct.unpack(fmt, packed)
    if fmt in ("<B", "<H", "<b", "<h") and t.data_type in (TensorProto.INT8, TensorProto.INT16):
        v = int(v)
    idx = range(len(field)) if everywhere else [index % len(field)]
    for i in idx:
        field[i] = v


def _int_limits(fmt: str) -> tuple[int, int]:
    bits = struct.calcsize(fmt) * 8
    if fmt[-1].isupper():
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


_SMALL = st.integers(min_value=0, max_value=64)

#: Mutations that keep the graph well-formed (values, input sizes, attributes): these reach the
#: passes, the scheduler and the simulator.
GENTLE = st.one_of(
    st.builds(SetInitValue, _SMALL, _SMALL, st.one_of(FLOATS, INTS.map(float)), st.booleans()),
    st.builds(SetQuantParam, _SMALL, st.one_of(FLOATS, INTS.map(float))),
    st.builds(SetDim, st.just(0), _SMALL, st.integers(1, 300)),
    st.builds(
        SetAttr,
        _SMALL,
        st.sampled_from(["axis", "transB", "to", "alpha", "beta", "saturate", "output_dtype"]),
        st.one_of(st.integers(-3, 3), st.sampled_from([1.0, 0.5, 1, 2, 3, 6, 7, 10, 16, 21])),
    ),
)

STRUCTURAL = st.one_of(
    st.builds(SetDim, _SMALL, _SMALL, st.one_of(DIMS, st.sampled_from(["N", "", "batch"]))),
    st.builds(SetRank, _SMALL, st.sampled_from([-1, 0, 1])),
    st.builds(SetElemType, _SMALL, ELEM_TYPES),
    st.builds(SetInitDims, _SMALL, st.lists(DIMS, max_size=4).map(tuple)),
    st.builds(SetInitType, _SMALL, ELEM_TYPES),
    st.builds(SetInitValue, _SMALL, _SMALL, st.one_of(FLOATS, INTS.map(float)), st.booleans()),
    st.builds(SetQuantParam, _SMALL, st.one_of(FLOATS, INTS.map(float))),
    st.builds(DropInitializer, _SMALL),
    st.builds(
        MakeExternal,
        _SMALL,
        st.sampled_from(
            [
                "data.bin",
                "missing.bin",
                "../outside.bin",
                "/etc/passwd",
                "sub/../data.bin",
                "escape_link",
                "",
                ".",
                "sub",
            ]
        ),
        st.sampled_from([0, 1, -1, 2**40]),
        st.sampled_from([None, 0, 1, 4, 2**40, -5]),
    ),
    st.builds(
        SetAttr,
        _SMALL,
        ATTR_NAMES,
        st.one_of(INTS, FLOATS, st.lists(INTS, max_size=3).map(tuple)),
    ),
    st.builds(DropAttr, _SMALL),
    st.builds(SetInput, _SMALL, st.integers(0, 8), _SMALL, st.booleans()),
    st.builds(SetArity, _SMALL, st.booleans(), _SMALL),
    st.builds(SetOutput, _SMALL, _SMALL),
    st.builds(SetOpType, _SMALL, OP_TYPES),
    st.builds(SetDomain, _SMALL, st.sampled_from(["", "ai.onnx", "com.microsoft", "x"])),
    st.builds(MoveNode, _SMALL, _SMALL, st.booleans()),
    st.builds(DropNode, _SMALL),
    st.builds(
        SetOpset,
        st.sampled_from([1, 7, 10, 13, 19, 21, 22, 23, 24, 99, 0, -1]),
        st.sampled_from([None, 3, 7, 10, 11, 13, 99, 0]),
    ),
)
BYTES = st.one_of(
    st.builds(
        FlipBytes,
        st.lists(st.floats(0, 1), min_size=1, max_size=8).map(tuple),
        st.lists(st.integers(0, 255), min_size=1, max_size=8).map(tuple),
    ),
    st.builds(CutBytes, st.floats(0, 1), st.binary(max_size=16)),
)


# -- structure-aware mutations: the model stays valid and supported -------------------------
#
# These change values, quantisation parameters, the batch size and supported attributes the
# way a different training run, calibration or export would, so the model still compiles and
# the case reaches the scheduler, the simulator and the comparison with onnxruntime.


def _is_qparam(t: TensorProto) -> bool:
    return "scale" in t.name or "zero_point" in t.name


def _feeds_reshape_shape(m: onnx.ModelProto, name: str) -> bool:
    return any(n.op_type == "Reshape" and n.input[1:2] == [name] for n in m.graph.node)


def _replace(m: onnx.ModelProto, t: TensorProto, arr: np.ndarray) -> None:
    t.CopyFrom(numpy_helper.from_array(arr.astype(numpy_helper.to_array(t).dtype), t.name))


@dataclass(frozen=True)
class RedrawFloats:
    """Redraw a float weight or bias (not a scale): N(0, 1) x ``magnitude``, from ``seed``."""

    target: int
    seed: int
    magnitude: float

    def apply(self, m: onnx.ModelProto) -> None:
        cands = [
            t for t in m.graph.initializer if t.data_type == TensorProto.FLOAT and not _is_qparam(t)
        ]
        t = _pick(cands, self.target)
        if t is not None:
            arr = numpy_helper.to_array(t)
            rng = np.random.default_rng(self.seed)
            _replace(m, t, rng.standard_normal(arr.shape) * self.magnitude)


@dataclass(frozen=True)
class RedrawInts:
    """Redraw a quantized weight (int8/uint8/int16/uint16) over ``fraction`` of its type's range,
    or an int32 bias within +/- 2**bits, from ``seed``."""

    target: int
    seed: int
    fraction: float
    bits: int = 16

    def apply(self, m: onnx.ModelProto) -> None:
        types = (TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, TensorProto.UINT16)
        cands = [
            t
            for t in m.graph.initializer
            if (t.data_type in types or t.data_type == TensorProto.INT32) and not _is_qparam(t)
        ]
        t = _pick(cands, self.target)
        if t is None:
            return
        arr = numpy_helper.to_array(t)
        rng = np.random.default_rng(self.seed)
        if t.data_type == TensorProto.INT32:
            lo, hi = -(2**self.bits), 2**self.bits
        else:
            info = np.iinfo(arr.dtype)
            mid = (int(info.min) + int(info.max)) / 2
            half = (int(info.max) - int(info.min)) / 2 * self.fraction
            lo, hi = int(mid - half), int(mid + half)
        _replace(m, t, rng.integers(lo, hi, arr.shape, endpoint=True))


@dataclass(frozen=True)
class SetScale:
    """Multiply a quantisation scale (every element) by ``factor`` (a positive finite number)."""

    target: int
    factor: float

    def apply(self, m: onnx.ModelProto) -> None:
        cands = [t for t in m.graph.initializer if "scale" in t.name]
        t = _pick(cands, self.target)
        if t is not None and t.data_type == TensorProto.FLOAT:
            _replace(m, t, numpy_helper.to_array(t).astype(np.float64) * self.factor)


@dataclass(frozen=True)
class SetZeroPoint:
    """Set an 8- or 16-bit zero point (every element) to ``fraction`` of the way through its
    range."""

    target: int
    fraction: float

    def apply(self, m: onnx.ModelProto) -> None:
        cands = [
            t
            for t in m.graph.initializer
            if "zero_point" in t.name
            and t.data_type
            in (TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, TensorProto.UINT16)
        ]
        t = _pick(cands, self.target)
        if t is None:
            return
        arr = numpy_helper.to_array(t)
        info = np.iinfo(arr.dtype)
        value = round(int(info.min) + (int(info.max) - int(info.min)) * self.fraction)
        _replace(m, t, np.full(arr.shape, value))


@dataclass(frozen=True)
class SetBatch:
    """Set the batch (first) dimension to ``value`` everywhere it appears: graph inputs, outputs,
    value_info and the first entry of constant Reshape targets."""

    value: int

    def apply(self, m: onnx.ModelProto) -> None:
        g = m.graph
        if not g.input or not g.input[0].type.tensor_type.shape.dim:
            return
        first = g.input[0].type.tensor_type.shape.dim[0]
        old = first.dim_value if first.HasField("dim_value") else None
        for v in [*g.input, *g.output, *g.value_info]:
            dims = v.type.tensor_type.shape.dim
            if len(dims) and (
                (old is not None and dims[0].HasField("dim_value") and dims[0].dim_value == old)
                or (old is None and v in g.input)
            ):
                dims[0].Clear()
                dims[0].dim_value = self.value
        for t in g.initializer:
            if t.data_type == TensorProto.INT64 and _feeds_reshape_shape(m, t.name):
                arr = numpy_helper.to_array(t).copy()
                if arr.ndim == 1 and arr.size and old is not None and arr[0] == old:
                    arr[0] = self.value
                    _replace(m, t, arr)


@dataclass(frozen=True)
class ToggleTransB:
    """Flip a float Gemm's transB and transpose its constant weight to match (same function)."""

    target: int

    def apply(self, m: onnx.ModelProto) -> None:
        inits = {t.name: t for t in m.graph.initializer}
        gemms = [
            n
            for n in m.graph.node
            if n.op_type == "Gemm" and len(n.input) > 1 and n.input[1] in inits
        ]
        n = _pick(gemms, self.target)
        if n is None or inits[n.input[1]].data_type != TensorProto.FLOAT:
            return
        t = inits[n.input[1]]
        if sum(1 for x in m.graph.node for i in x.input if i == t.name) != 1:
            return
        _replace(m, t, np.ascontiguousarray(numpy_helper.to_array(t).T))
        attr = next((a for a in n.attribute if a.name == "transB"), None)
        if attr is None:
            n.attribute.append(helper.make_attribute("transB", 1))
        else:
            attr.i = 0 if attr.i else 1


#: Structure-aware mutations: the model stays a valid, supported one.
VALID = st.one_of(
    st.builds(RedrawFloats, _SMALL, _SMALL, st.sampled_from([1e-3, 0.1, 1.0, 10.0, 1e3])),
    st.builds(RedrawInts, _SMALL, _SMALL, st.sampled_from([0.05, 0.5, 1.0]), st.integers(0, 24)),
    st.builds(SetScale, _SMALL, st.sampled_from([1e-3, 0.1, 0.5, 2.0, 10.0, 1e3])),
    st.builds(SetZeroPoint, _SMALL, st.floats(0, 1)),
    st.builds(SetBatch, st.sampled_from([1, 2, 3, 7, 16, 33, 64, 128])),
    st.builds(ToggleTransB, _SMALL),
)

#: The structure-aware mutations that change only values (weights, biases, scales, zero
#: points), as another training run or calibration would: after them a model that compiles must
#: pass the fidelity check. The edge-value mutations (SetInitValue, SetQuantParam: NaN, 2**31,
#: 1e-45 ...) are not among them: they probe the refusals, and a float model's bf16 GEMM fed
#: such values may exceed the float tolerance, which the README documents.
VALUE_MUTATIONS = (RedrawFloats, RedrawInts, SetScale, SetZeroPoint)


def values_only(structural: list, byte_level: list) -> bool:
    """Whether these mutations change only values (see :data:`VALUE_MUTATIONS`)."""
    return not byte_level and all(isinstance(m, VALUE_MUTATIONS) for m in structural)


def apply(base: bytes, structural: list, byte_level: list) -> bytes:
    """The bytes of ``base`` after the structural, then the byte-level mutations."""
    m = onnx.load_model_from_string(base)
    for mut in structural:
        mut.apply(m)
    data = m.SerializeToString()
    for mut in byte_level:
        data = mut.apply_bytes(data)
    return data


#: What the fuzz test applies to a base model: mostly gentle mutations, some structural ones.
#: Four fifths of the cases get only structure-aware mutations (they reach the back end), the
#: rest the gentle and structural ones that probe the frontend's refusals.
MUTATIONS = st.one_of(
    st.lists(VALID, min_size=1, max_size=3),
    st.lists(VALID, min_size=1, max_size=3),
    st.lists(VALID, min_size=1, max_size=3),
    st.lists(VALID, min_size=1, max_size=3),
    st.lists(st.one_of(GENTLE, GENTLE, STRUCTURAL), min_size=1, max_size=3),
)

#: Extra ``codesign compile`` options drawn with each model.
COMPILE_OPTIONS = st.one_of(
    st.just(()),
    st.just(()),
    st.sampled_from(
        [
            ("--block", "1x1"),
            ("--block", "4x4"),
            ("--block", "1x16"),
            ("--block", "3x5"),
            ("--block", "40x40"),
            ("--board", "ve2302"),
            ("--board", "vck190"),
            ("--solver-time-limit", "0"),
            ("--shape", "input=3x8"),
            ("--shape", "input=1x2x4"),
            ("--shape", "nope=1"),
            ("--max-model-size", "1K"),
        ]
    ),
)
