"""Host partitions: ONNX nodes the accelerator does not take run on the board's ARM cores.

The lowering driver (:class:`codesign.frontend.lower._Lowering`) asks :class:`HostPartitioner`
to take a node when the lowering registry (:mod:`codesign.frontend.lowerings`) has no lowering
for it, when its lowering raises :class:`~codesign.errors.UnsupportedError` (the message becomes
the node's reason), or when the pass pipeline could not map it and the compile asked again with
the node forced onto the Host. A :class:`~codesign.errors.ModelError` stays an error.

Partitioning is one walk in the model's topological order. Host nodes gather in a *pending*
group of connected components; a component is closed ("flushed") when a node the accelerator
takes reads one of its values, and the rest at the end. A flush emits one
:class:`~codesign.ir.host.Host` op per component, at that point of the KernelGraph, so every input of a partition is a
tensor defined before it (a graph input, an earlier op's output, or a constant, which goes into
the partition as an initializer). A partition's outputs are its values read outside it; they
must be tensors the accelerator can carry (a KernelGraph dtype, static non-empty shape). If
closing the group would hand out one that is not (a BOOL mask, say), the reading node joins the
group instead, so the value stays inside a partition.

Each partition is a self-contained ONNX model: its nodes, their value infos, the initializers
they read, the model's functions and opset imports (com.microsoft included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnx_ir as ir

from codesign.errors import CodesignError, ModelError
from codesign.ir.graph import Op
from codesign.ir.host import Host

if TYPE_CHECKING:
    from codesign.frontend.lower import _Lowering


def op_label(node: ir.Node) -> str:
    """``Op`` in the default domain, ``domain.Op`` elsewhere."""
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


class HostPartitioner:
    """The Host side of one lowering run (see the module docstring)."""

    def __init__(self, lw: _Lowering, forced: Iterable[str] = ()) -> None:
        self.lw = lw
        self.graph = lw.model.graph
        #: labels of nodes the compile forces onto the Host (the passes could not map them)
        self.forced = frozenset(forced)
        self.index: dict[int, int] = {}
        #: node of a subgraph -> the top-level node that holds it
        self.owner: dict[int, ir.Node] = {}
        for i, node in enumerate(self.graph):
            self.index[id(node)] = i
            for sub in _subgraph_nodes(node):
                self.owner[id(sub)] = node
        self.pending: list[ir.Node] = []
        self.pending_ids: set[int] = set()
        self.pending_values: set[str] = set()
        self.reasons: dict[int, str] = {}
        self.count = 0

    # -- labels -----------------------------------------------------------------------------------

    def label(self, node: ir.Node) -> str:
        """The node's name, or ``<OpType #index>`` when the exporter left it unnamed."""
        return node.name or f"<{op_label(node)} #{self.index.get(id(node), -1)}>"

    def forced_reason(self, node: ir.Node) -> str | None:
        if self.label(node) in self.forced:
            return "its primitive ops could not be mapped to the AIE or PL by the passes"
        return None

    # -- the decision for a node the accelerator could take ----------------------------------------

    def before_lowering(self, node: ir.Node) -> tuple[str | None, list[list[ir.Node]]]:
        """Called before lowering ``node``: ``(reason, [])`` when it must join the Host group,
        else ``(None, components)``, the pending partitions it reads from. The caller declares
        their outputs (:meth:`declare_outputs`), lowers the node and, if that succeeds, closes
        them in front of the node's ops (:meth:`flush`); if the lowering refuses the node, it
        joins them instead (a partition is not cut where a refused node would rejoin it)."""
        reads = [v for v in _all_inputs(node, self.graph) if v.name in self.pending_values]
        if not reads:
            return None, []
        for v in reads:
            why = self.undeclarable(v)
            if why:
                return f"it reads {v.name!r} from a Host partition, {why}", []
        # only the partitions the node reads from close; the others stay open to grow
        names = {v.name for v in reads}
        needed = [
            c
            for c in _components(self.pending, self.graph)
            if any(v is not None and v.name in names for n in c for v in n.outputs)
        ]
        for v in self.group_outputs([n for c in needed for n in c]):
            why = self.undeclarable(v)
            if why:
                return (
                    f"it reads a Host partition that also hands out {v.name!r}, {why}, so the "
                    "partition stays open"
                ), []
        return None, needed

    def declare_outputs(self, components: list[list[ir.Node]]) -> None:
        """Give the outputs of ``components`` their KernelGraph types (before they close)."""
        saved = self.lw._node
        for v in self.group_outputs([n for c in components for n in c]):
            self.lw._node = v.producer()
            self.lw.declare(v)
        self.lw._node = saved

    def undeclarable(self, v: ir.Value) -> str | None:
        """Why the accelerator cannot carry tensor ``v`` (None: it can)."""
        if v.shape is not None and any(isinstance(d, int) and d == 0 for d in v.shape):
            return f"an empty tensor (shape {list(v.shape)})"
        try:
            self.lw.type_of(v)
        except CodesignError as e:
            text = str(e)
            return text.split(": ", 2)[-1] if ": " in text else text
        return None

    # -- the group ---------------------------------------------------------------------------------

    def add(self, node: ir.Node, reason: str) -> None:
        """Put ``node`` in the pending Host group; its inputs must be defined by then."""
        kg = self.lw.kg
        for v in _all_inputs(node, self.graph):
            if v.name not in kg.types and v.name not in self.pending_values:
                raise ModelError(f"{self.lw.where()}: input {v.name!r} is not defined before use")
        self.pending.append(node)
        self.pending_ids.add(id(node))
        self.reasons[id(node)] = reason
        self.pending_values.update(v.name for v in node.outputs if v is not None and v.name)

    def group_outputs(self, group: list[ir.Node]) -> list[ir.Value]:
        """Values made in ``group`` that something outside it reads (or graph outputs)."""
        ids = {id(n) for n in group}
        out = []
        for node in group:
            for v in node.outputs:
                if v is None or not v.name:
                    continue
                outside = v.is_graph_output() or any(
                    id(self.top(u.node)) not in ids for u in v.uses()
                )
                if outside:
                    out.append(v)
        return out

    def top(self, node: ir.Node) -> ir.Node:
        return self.owner.get(id(node), node)

    def flush(
        self, components: list[list[ir.Node]] | None = None, before: Op | None = None
    ) -> None:
        """Emit ``components`` of the pending group (default: all of it) as Host ops, one per
        connected component, in order, at the end of the KernelGraph or in front of op
        ``before``; the rest stays pending."""
        if components is None:
            components = _components(self.pending, self.graph)
        gone = {id(n) for c in components for n in c}
        self.pending = [n for n in self.pending if id(n) not in gone]
        self.pending_ids = {id(n) for n in self.pending}
        self.pending_values = {
            v.name for n in self.pending for v in n.outputs if v is not None and v.name
        }
        for component in components:
            self._emit(component, before)

    def _emit(self, nodes: list[ir.Node], before: Op | None = None) -> None:
        lw, kg = self.lw, self.lw.kg
        made = {v.name for n in nodes for v in n.outputs if v is not None and v.name}
        inputs: dict[str, ir.Value] = {}
        for n in nodes:
            for v in _all_inputs(n, self.graph):
                if v.name not in made:
                    inputs.setdefault(v.name, v)
        outputs = self.group_outputs(nodes)
        name = f"host_partition_{self.count}"
        self.count += 1
        if not outputs:
            return  # nothing outside reads it: a dead branch, as pruning would drop it
        saved = lw._node
        for v in outputs:
            lw._node = v.producer()
            lw.declare(v)
        lw._node = saved
        feeds = [v for v in inputs.values() if v.name not in kg.constants]
        consts = [v for v in inputs.values() if v.name in kg.constants]
        model = self._submodel(name, nodes, feeds, consts, outputs, made)
        host = (
            Host(
                name,
                tuple(v.name for v in feeds),
                tuple(v.name for v in outputs),
                nodes=tuple(self.label(n) for n in nodes),
                op_types=tuple(op_label(n) for n in nodes),
                reasons=tuple(self.reasons[id(n)] for n in nodes),
                model=model,
                flops=sum(node_flops(n) for n in nodes),
            ),
        )
        if before is None:
            kg.append(host[0])
        else:
            kg.insert_before(before, host)

    def _submodel(
        self,
        name: str,
        nodes: list[ir.Node],
        feeds: list[ir.Value],
        consts: list[ir.Value],
        outputs: list[ir.Value],
        made: set[str],
    ) -> bytes:
        kg, model = self.lw.kg, self.lw.model

        def io(v: ir.Value) -> onnx.ValueInfoProto:
            t = kg.types[v.name]
            return onnx.helper.make_tensor_value_info(v.name, int(v.dtype), list(t.shape))

        initializers = [self._initializer(v) for v in consts]
        out_names = {v.name for v in outputs}
        value_info = [
            ir.serde.serialize_value(v)
            for n in nodes
            for v in n.outputs
            if v is not None and v.name in made and v.name not in out_names and v.type is not None
        ]
        graph = onnx.helper.make_graph(
            [ir.serde.serialize_node(n) for n in nodes],
            name,
            [io(v) for v in feeds],
            [io(v) for v in outputs],
            initializer=initializers,
            value_info=value_info,
        )
        opsets = dict(model.opset_imports)
        for n in nodes:
            if n.domain not in ("", "ai.onnx"):
                opsets.setdefault(n.domain, 1)
        proto = onnx.helper.make_model(
            graph,
            opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
            ir_version=model.ir_version,
            functions=[ir.serde.serialize_function(f) for f in model.functions.values()],
            producer_name="codesign",
        )
        return proto.SerializeToString(deterministic=True)

    def _initializer(self, v: ir.Value) -> onnx.TensorProto:
        """A constant the partition reads: the model's own tensor when it has one (exact element
        type), else the frontend's value (a folded constant) in ``v``'s element type."""
        tensor = v.const_value
        prod = v.producer()
        if tensor is None and prod is not None and prod.op_type == "Constant":
            attr = prod.attributes.get("value")
            tensor = attr.value if attr is not None else None
        if tensor is None:
            arr = np.asarray(self.lw.kg.constants[v.name])
            tensor = ir.tensor(arr, dtype=v.dtype if v.dtype is not None else None)
        proto = ir.serde.serialize_tensor(tensor)
        proto.name = v.name
        return proto


# -- graph helpers ---------------------------------------------------------------------------------


def _subgraph_nodes(node: ir.Node) -> list[ir.Node]:
    out = []
    for attr in node.attributes.values():
        graphs = []
        if attr.type == ir.AttributeType.GRAPH:
            graphs = [attr.value]
        elif attr.type == ir.AttributeType.GRAPHS:
            graphs = list(attr.value)
        for g in graphs:
            out.extend(g.all_nodes())
    return out


def _all_inputs(node: ir.Node, top: ir.Graph) -> list[ir.Value]:
    """The node's named inputs, and the outer-scope values its subgraphs read (implicit
    inputs), each once, in order."""
    seen: dict[str, ir.Value] = {}
    for v in node.inputs:
        if v is not None and v.name:
            seen.setdefault(v.name, v)
    for sub in _subgraph_nodes(node):
        for v in sub.inputs:
            if v is not None and v.name and v.graph is top:
                seen.setdefault(v.name, v)
    return list(seen.values())


def _components(nodes: list[ir.Node], top: ir.Graph) -> list[list[ir.Node]]:
    """``nodes`` split into groups connected by the values they pass each other (order kept)."""
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    maker: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for v in n.outputs:
            if v is not None and v.name:
                maker[v.name] = i
    for i, n in enumerate(nodes):
        for v in _all_inputs(n, top):
            j = maker.get(v.name)
            if j is not None:
                parent[find(i)] = find(j)
    groups: dict[int, list[ir.Node]] = {}
    for i, n in enumerate(nodes):
        groups.setdefault(find(i), []).append(n)
    return list(groups.values())


# -- modelled work ---------------------------------------------------------------------------------

#: operations per output element of ops that evaluate a transcendental function or normalise
#: (a modelled weight, not a measurement)
_HEAVY = {
    "Exp": 8, "Log": 8, "Tanh": 8, "Sigmoid": 8, "Erf": 8, "Gelu": 10, "FastGelu": 10,
    "Softmax": 12, "LogSoftmax": 12, "LayerNormalization": 8, "SimplifiedLayerNormalization": 6,
    "Sqrt": 4, "Reciprocal": 4, "Div": 2, "Pow": 8, "HardSigmoid": 2, "Softplus": 10,
}  # fmt: skip


def _size(v: ir.Value | None) -> int:
    if v is None or v.shape is None:
        return 0
    dims = [d if isinstance(d, int) else 1 for d in v.shape]
    return math.prod(dims)


def _dims(v: ir.Value | None) -> list[int]:
    if v is None or v.shape is None:
        return []
    return [d if isinstance(d, int) else 1 for d in v.shape]


def node_flops(node: ir.Node) -> int:
    """Modelled arithmetic operations of one ONNX node (multiply-adds count two): GEMM-like and
    recurrent ops from their shapes, element-wise ops as a weight per output element."""
    op = node.op_type
    outs = [v for v in node.outputs if v is not None]
    out_size = sum(_size(v) for v in outs)
    ins = list(node.inputs)
    if op in ("MatMul", "MatMulInteger", "Gemm", "FusedMatMul") and len(ins) >= 2:
        a = _dims(ins[0])
        k = a[0] if op == "Gemm" and node.attributes.get("transA") else (a[-1] if a else 1)
        return 2 * _size(outs[0] if outs else None) * k
    if op in ("LSTM", "GRU", "RNN") and len(ins) >= 3:
        x, r = _dims(ins[0]), _dims(ins[2])
        if len(x) == 3 and len(r) == 3:
            seq, batch, inp = x
            dirs, gh, hidden = r
            return 2 * seq * batch * dirs * gh * (inp + hidden) + 10 * seq * batch * dirs * gh
    if op in ("Conv", "ConvTranspose") and len(ins) >= 2:
        w = _dims(ins[1])
        per_out = math.prod(w[1:]) if len(w) > 1 else 1
        return 2 * _size(outs[0] if outs else None) * per_out
    if op in ("Shape", "Size", "Constant", "ConstantOfShape", "Identity", "Reshape", "Squeeze",
              "Unsqueeze", "Flatten"):  # fmt: skip
        return 0
    return out_size * _HEAVY.get(op, 1)
