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
- ``heads``: attention heads; refused for now (one line), as the frontend lowers no attention.

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

from codesign.errors import ModelError, OptionError, UnsupportedError
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

    Raises OptionError for a bad method or sparsity, UnsupportedError for ``heads`` and
    ModelError when the model has no float MatMul/Gemm weight to prune.
    """
    p = Path(path)
    if method not in METHODS:
        raise OptionError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if method == "heads":
        raise UnsupportedError(
            f"{p}: --method heads is not implemented yet (the frontend lowers no attention); "
            "use neurons, magnitude or nm"
        )
    amount = parse_sparsity(method, sparsity)
    data = reference_copy(p, read_model_bytes(p, max_bytes), max_bytes)
    model = onnx.load_from_string(data)
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
