"""``codesign prune``: write a pruned copy of an ONNX model, for experiments.

The float weights of MatMul and Gemm nodes (an initializer as B; Gemm's ``transB`` honoured, so
"K" is always the reduction axis) are pruned in place of a self-contained copy of the model:

- ``magnitude`` (``--sparsity 0.5``): unstructured, per layer: the fraction of smallest-|w|
  weights of each matrix becomes zero (ties: the earlier element in row-major order first);
- ``nm`` (``--sparsity 2:4``): N:M along K: of every M consecutive weights of one output
  channel along K, all but the N largest become zero (:func:`codesign.sim.numerics.nm_prune`;
  a short last group counts as zero-padded);
- ``neurons`` (``--sparsity 0.5``): structured: the fraction of output neurons with the
  smallest L2 norm of each FFN projection (a MatMul/Gemm whose output reaches another
  MatMul/Gemm through element-wise nodes) lose their weight column and their bias, so the
  compiler's shrink pass removes them;
- ``heads`` (``--sparsity 0.5``): structured: the fraction of attention heads with the smallest
  L2 norm of their rows of the output projection lose those rows (and their columns and bias
  of the value projection, when it is found), so they add nothing to the block's output. An
  output projection is a MatMul/Gemm whose activation is the head merge Transpose(perm 0, 2,
  1, 3) -> Reshape of a [batch, heads, seq, head_dim] tensor (shape inference gives heads and
  head_dim; a symbolic head count is the weight's K over head_dim); at least one head of each
  block is kept. The compiler removes the zeroed heads (passes/heads.py: their Q/K/V columns,
  products and O rows) when every op between the projections and O keeps heads apart.

Quantized weights (behind DequantizeLinear) are not pruned: prune the float model, then
quantize it. Only this package imports onnx.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from codesign.errors import ModelError, OptionError
from codesign.frontend.load import MAX_MODEL_BYTES, read_model_bytes, reference_copy
from codesign.sim import numerics

METHODS = ("magnitude", "nm", "neurons", "heads")

#: ONNX ops a pruned neuron's lane passes through lane by lane (to find FFN projections).
_ELEMENTWISE = frozenset(
    {"Add", "Sub", "Mul", "Div", "Relu", "Gelu", "FastGelu", "Sigmoid", "Tanh", "Erf", "Cast"}
)


@dataclass(frozen=True)
class PrunedWeight:
    """One pruned initializer: its name, [K, N] shape and zero counts before and after."""

    name: str
    node: str
    shape: tuple[int, int]
    zeros_before: int
    zeros_after: int

    @property
    def fraction(self) -> float:
        return self.zeros_after / max(1, self.shape[0] * self.shape[1])


def parse_sparsity(method: str, text: str) -> float | tuple[int, int]:
    """``--sparsity`` for ``method``: a fraction in (0, 1) (or a percentage "50%"), or "N:M"
    for ``nm`` (M a power of two, 1 <= N < M); OptionError naming what was expected."""
    if method == "nm":
        m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text)
        if m:
            n, mm = int(m.group(1)), int(m.group(2))
            if 1 <= n < mm <= 64 and mm & (mm - 1) == 0:
                return n, mm
        raise OptionError(
            f"--sparsity for --method nm must be N:M with M a power of two up to 64 and "
            f"1 <= N < M (e.g. 2:4), not {text!r}"
        )
    try:
        v = float(text[:-1]) / 100 if text.strip().endswith("%") else float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v < 1:
        raise OptionError(
            f"--sparsity for --method {method} must be a fraction in (0, 1) such as 0.5 "
            f"(or 50%), not {text!r}"
        )
    return v


def _weights(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, str, int]]:
    """(node, initializer name, K axis) of every MatMul/Gemm with a float initializer as B."""
    inits = {t.name: t for t in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        t = inits.get(node.input[1])
        if t is None or len(t.dims) != 2:
            continue
        if t.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            continue
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        found.append((node, node.input[1], 1 if trans_b else 0))
    return found


def _reaches_matmul(model: onnx.ModelProto, tensor: str) -> bool:
    """Whether ``tensor`` reaches the A input of a MatMul/Gemm through element-wise nodes only
    (every path; a graph output on the way, or any other node, says no)."""
    users: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    outputs = {o.name for o in model.graph.output}
    seen: set[str] = set()
    todo = [tensor]
    reached = False
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in outputs or not users.get(t):
            return False
        for n in users[t]:
            if n.op_type in ("MatMul", "Gemm") and n.input[0] == t and t not in n.input[1:]:
                reached = True
            elif n.op_type in _ELEMENTWISE:
                todo.extend(n.output)
            else:
                return False
    return reached


def _bias_of(model: onnx.ModelProto, node: onnx.NodeProto, n: int) -> str | None:
    """The initializer holding ``node``'s per-neuron bias [N]: Gemm's C, or the constant of the
    Add that alone reads a MatMul's output; None when there is none."""
    inits = {t.name: t for t in model.graph.initializer}
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] in inits:
        t = inits[node.input[2]]
        return t.name if int(np.prod(t.dims)) == n else None
    users = [u for u in model.graph.node if node.output[0] in u.input]
    if len(users) == 1 and users[0].op_type == "Add":
        other = [i for i in users[0].input if i != node.output[0]]
        if len(other) == 1 and other[0] in inits and int(np.prod(inits[other[0]].dims)) == n:
            return other[0]
    return None


def prune_array(
    w_kn: np.ndarray, method: str, sparsity: float | tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Prune a [K, N] weight; return it and, for ``neurons``, the mask of the removed neurons."""
    if method == "magnitude":
        flat = np.abs(w_kn.astype(np.float64)).reshape(-1)
        k = int(np.floor(float(sparsity) * flat.size))  # type: ignore[arg-type]
        out = w_kn.copy().reshape(-1)
        out[np.argsort(flat, kind="stable")[:k]] = 0
        return out.reshape(w_kn.shape), None
    if method == "nm":
        n, m = sparsity  # type: ignore[misc]
        wt = w_kn.T  # [N, K]: K last
        pad = -wt.shape[1] % m
        wp = np.concatenate([wt, np.zeros((wt.shape[0], pad), wt.dtype)], axis=1)
        return np.ascontiguousarray(numerics.nm_prune(wp, n, m)[:, : wt.shape[1]].T), None
    # neurons: the fraction of output columns with the smallest L2 norm
    norms = np.linalg.norm(w_kn.astype(np.float64), axis=0)
    k = int(np.floor(float(sparsity) * norms.size))  # type: ignore[arg-type]
    dead = np.zeros(norms.size, dtype=bool)
    dead[np.argsort(norms, kind="stable")[:k]] = True
    out = w_kn.copy()
    out[:, dead] = 0
    return out, dead


def prune_model(
    path: str | os.PathLike[str],
    method: str,
    sparsity: str,
    max_bytes: int = MAX_MODEL_BYTES,
) -> tuple[bytes, list[PrunedWeight]]:
    """The serialised pruned model (self-contained: external data inlined) and what was pruned.

    Raises OptionError for a bad method or sparsity, and
    ModelError when the model has no float MatMul/Gemm weight to prune.
    """
    p = Path(path)
    if method not in METHODS:
        raise OptionError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    amount = parse_sparsity(method, sparsity)
    data = reference_copy(p, read_model_bytes(p, max_bytes), max_bytes)
    model = onnx.load_from_string(data)
    if method == "heads":
        return _prune_heads(p, model, float(amount))  # type: ignore[arg-type]
    inits = {t.name: t for t in model.graph.initializer}
    done: list[PrunedWeight] = []
    seen: set[str] = set()
    for node, name, k_axis in _weights(model):
        if name in seen:
            continue
        if method == "neurons" and not _reaches_matmul(model, node.output[0]):
            continue
        seen.add(name)
        t = inits[name]
        w = numpy_helper.to_array(t)
        w_kn = w if k_axis == 0 else w.T
        new, dead = prune_array(w_kn, method, amount)
        t.CopyFrom(
            numpy_helper.from_array(new if k_axis == 0 else np.ascontiguousarray(new.T), name)
        )
        if dead is not None:
            bias = _bias_of(model, node, w_kn.shape[1])
            if bias is not None:
                b = numpy_helper.to_array(inits[bias]).copy()
                b.reshape(-1)[dead] = 0
                inits[bias].CopyFrom(numpy_helper.from_array(b, bias))
        done.append(
            PrunedWeight(
                name,
                node.name or node.output[0],
                (int(w_kn.shape[0]), int(w_kn.shape[1])),
                int(np.count_nonzero(w == 0)),
                int(np.count_nonzero(new == 0)),
            )
        )
    if not done:
        what = "FFN projection (a MatMul/Gemm feeding another)" if method == "neurons" else ""
        raise ModelError(
            f"{p}: has no float MatMul/Gemm {what or 'weight'} to prune (prune the float model "
            "before quantizing it)"
        )
    return model.SerializeToString(deterministic=True), done


def _head_merge(model: onnx.ModelProto, node: onnx.NodeProto) -> tuple[int | None, int, str] | None:
    """(heads, head_dim, the per-head tensor) when ``node``'s activation is the head merge
    Reshape(Transpose(t, perm 0, 2, 1, 3)) of t [batch, heads, seq, head_dim], else None;
    heads is None when shape inference left it symbolic (TorchScript's BERT computes it)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    reshape = producer.get(node.input[0])
    if reshape is None or reshape.op_type != "Reshape":
        return None
    transpose = producer.get(reshape.input[0])
    if transpose is None or transpose.op_type != "Transpose":
        return None
    perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"]
    if perm != [[0, 2, 1, 3]]:
        return None
    shapes = {
        v.name: [
            d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim
        ]
        for v in model.graph.value_info
    }
    dims = shapes.get(transpose.input[0])
    if not dims or len(dims) != 4 or not dims[3]:
        return None
    return (int(dims[1]) if dims[1] else None), int(dims[3]), transpose.input[0]


def _value_projection(model: onnx.ModelProto, per_head: str):
    """The (node, initializer, K axis) of the projection that made the value heads: the MatMul
    ``per_head = P @ V`` whose V is Transpose(Reshape(x @ W_v [+ b])); None when not found."""
    producer = {o: n for n in model.graph.node for o in n.output}
    pv = producer.get(per_head)
    if pv is None or pv.op_type != "MatMul":
        return None
    t = producer.get(pv.input[1])
    r = producer.get(t.input[0]) if t is not None and t.op_type == "Transpose" else None
    src = producer.get(r.input[0]) if r is not None and r.op_type == "Reshape" else None
    if src is not None and src.op_type == "Add":  # the bias after a MatMul
        src = next((producer[i] for i in src.input if i in producer), None)
    weights = {n.output[0]: (n, w, k) for n, w, k in _weights(model)}
    return weights.get(src.output[0]) if src is not None else None


def _prune_heads(p: Path, model: onnx.ModelProto, fraction: float):
    """``--method heads`` (module doc) on a loaded self-contained model."""
    model = onnx.shape_inference.infer_shapes(model)
    inits = {t.name: t for t in model.graph.initializer}
    done: list[PrunedWeight] = []

    def zero(node, name: str, k_axis: int, heads: np.ndarray, d: int, axis: str) -> None:
        t = inits[name]
        w = numpy_helper.to_array(t)
        w_kn = (w if k_axis == 0 else w.T).copy()
        before = int(np.count_nonzero(w == 0))
        for h in np.flatnonzero(heads):
            if axis == "rows":
                w_kn[h * d : (h + 1) * d, :] = 0
            else:
                w_kn[:, h * d : (h + 1) * d] = 0
        out = w_kn if k_axis == 0 else np.ascontiguousarray(w_kn.T)
        t.CopyFrom(numpy_helper.from_array(out, name))
        shape = (int(w_kn.shape[0]), int(w_kn.shape[1]))
        done.append(
            PrunedWeight(
                name, node.name or node.output[0], shape, before, int(np.count_nonzero(out == 0))
            )
        )

    for node, name, k_axis in _weights(model):
        merge = _head_merge(model, node)
        if merge is None:
            continue
        heads, d, per_head = merge
        w = numpy_helper.to_array(inits[name])
        w_kn = w if k_axis == 0 else w.T
        if heads is None and w_kn.shape[0] % d == 0:
            heads = w_kn.shape[0] // d  # the weight's K is heads * head_dim
        if heads is None or w_kn.shape[0] != heads * d:
            continue
        norms = np.linalg.norm(w_kn.astype(np.float64).reshape(heads, -1), axis=1)
        k = min(int(np.floor(fraction * heads)), heads - 1)
        dead = np.zeros(heads, dtype=bool)
        dead[np.argsort(norms, kind="stable")[:k]] = True
        zero(node, name, k_axis, dead, d, "rows")
        value = _value_projection(model, per_head)
        if value is not None and value[1] != name:
            v_node, v_name, v_k = value
            zero(v_node, v_name, v_k, dead, d, "columns")
            bias = _bias_of(model, v_node, heads * d)
            if bias is not None:
                b = numpy_helper.to_array(inits[bias]).copy().reshape(-1)
                b.reshape(heads, d)[dead] = 0
                inits[bias].CopyFrom(numpy_helper.from_array(b.reshape(inits[bias].dims), bias))
    if not done:
        raise ModelError(
            f"{p}: has no attention output projection to prune heads of (a float MatMul/Gemm "
            "reading the head merge Transpose(perm 0,2,1,3) -> Reshape of [batch, heads, seq, "
            "head_dim])"
        )
    del model.graph.value_info[:]  # shape inference's, not the user's
    return model.SerializeToString(deterministic=True), done
