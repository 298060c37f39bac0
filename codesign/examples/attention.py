"""Example attention cores (no Softmax): QK^T and attention x V between head split and merge.

:func:`attention_core` writes ``y = ((q @ k^T) * scale) @ v`` with projections, a head split by
Reshape + Transpose, K^T as one Transpose of the split keys, a head merge by Transpose +
Reshape and an output projection; optionally quantized by onnxruntime's ``quantize_static``
(QDQ, per tensor). Queries come from input ``x`` ``[batch, q_len, E]`` and keys/values from
input ``ctx`` ``[batch, kv_len, E]``, so ``q_len = 1`` is a decode-shaped call (one new token
against ``kv_len`` cached positions).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codesign.errors import OptionError
from codesign.examples.models import (
    PathLike,
    _atomic_write,
    _DropPreprocessAdvice,
    _make_model,
    _resolve_path,
    _rng,
    _save,
)

_STREAM_WEIGHTS = 41
_STREAM_CALIBRATION = 42


def _graph(
    heads: int, head_dim: int, q_len: int, kv_len: int, batch: int, seed: int, transpose_out: bool
) -> onnx.ModelProto:
    E = heads * head_dim
    rng = _rng(seed, _STREAM_WEIGHTS)
    inits = []
    for name in ("Wq", "Wk", "Wv", "Wo"):
        w = (rng.standard_normal((E, E)) / np.sqrt(E)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, name))
    inits.append(numpy_helper.from_array(np.array([batch, q_len, heads, head_dim]), "q_shape"))
    inits.append(numpy_helper.from_array(np.array([batch, kv_len, heads, head_dim]), "kv_shape"))
    inits.append(numpy_helper.from_array(np.array([batch, q_len, E]), "merged_shape"))
    inits.append(numpy_helper.from_array(np.array(1 / np.sqrt(head_dim), np.float32), "scale"))
    mk = helper.make_node
    nodes = [
        mk("MatMul", ["x", "Wq"], ["q"], name="q_proj"),
        mk("MatMul", ["ctx", "Wk"], ["k"], name="k_proj"),
        mk("MatMul", ["ctx", "Wv"], ["v"], name="v_proj"),
        mk("Reshape", ["q", "q_shape"], ["q4"], name="q_split"),
        mk("Reshape", ["k", "kv_shape"], ["k4"], name="k_split"),
        mk("Reshape", ["v", "kv_shape"], ["v4"], name="v_split"),
        mk("Transpose", ["q4"], ["qh"], name="q_heads", perm=[0, 2, 1, 3]),
        mk("Transpose", ["k4"], ["kt"], name="k_heads_t", perm=[0, 2, 3, 1]),
        mk("Transpose", ["v4"], ["vh"], name="v_heads", perm=[0, 2, 1, 3]),
        mk("MatMul", ["qh", "kt"], ["s"], name="qk"),
        mk("Mul", ["s", "scale"], ["ss"], name="scaled"),
        mk("MatMul", ["ss", "vh"], ["o"], name="av"),
        mk("Transpose", ["o"], ["om"], name="merge", perm=[0, 2, 1, 3]),
        mk("Reshape", ["om", "merged_shape"], ["m"], name="merged"),
        mk("MatMul", ["m", "Wo"], ["y"], name="o_proj"),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, q_len, E])]
    if transpose_out:
        # a Transpose nothing can absorb (of a graph input, into a graph output): a PL tiler
        nodes.append(mk("Transpose", ["x"], ["xt"], name="x_t", perm=[0, 2, 1]))
        outputs.append(helper.make_tensor_value_info("xt", TensorProto.FLOAT, [batch, E, q_len]))
    graph = helper.make_graph(
        nodes,
        "attention_core",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, q_len, E]),
            helper.make_tensor_value_info("ctx", TensorProto.FLOAT, [batch, kv_len, E]),
        ],
        outputs,
        inits,
    )
    return _make_model(graph)


class _Calibration:
    """Deterministic N(0, 1) batches for every graph input."""

    def __init__(self, model: onnx.ModelProto, seed: int, batches: int = 4) -> None:
        rng = _rng(seed, _STREAM_CALIBRATION)
        shapes = {
            i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input
        }
        self._it = iter(
            [
                {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
                for _ in range(batches)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def attention_core(
    path: PathLike,
    heads: int = 4,
    head_dim: int = 16,
    q_len: int = 32,
    kv_len: int | None = None,
    batch: int = 1,
    seed: int = 0,
    quantize: bool = False,
    activation_type: str = "uint8",
    transpose_out: bool = True,
) -> Path:
    """Write the attention core (see the module docstring); return the path.

    ``kv_len`` defaults to ``q_len``. ``quantize``: onnxruntime ``quantize_static`` in QDQ
    format, per tensor, ``activation_type`` ``"uint8"`` (its default) or ``"int8"``.
    ``transpose_out`` adds output ``xt``, a Transpose of ``x`` that runs as a PL tiler."""
    for name, v in (("heads", heads), ("head_dim", head_dim), ("q_len", q_len), ("batch", batch)):
        if not isinstance(v, int) or v < 1:
            raise OptionError(f"{name} must be a positive integer, not {v!r}")
    kv = q_len if kv_len is None else kv_len
    model = _graph(heads, head_dim, q_len, kv, batch, seed, transpose_out)
    if not quantize:
        return _save(model, path)
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    if activation_type not in types:
        raise OptionError(f"activation_type must be uint8 or int8, not {activation_type!r}")
    advice = _DropPreprocessAdvice()
    logging.getLogger().addFilter(advice)
    try:
        with tempfile.TemporaryDirectory(prefix="codesign-attn-") as tmp:
            src, dst = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
            src.write_bytes(model.SerializeToString(deterministic=True))
            quantize_static(
                str(src),
                str(dst),
                _Calibration(model, seed),
                quant_format=QuantFormat.QDQ,
                activation_type=types[activation_type],
                weight_type=QuantType.QInt8,
            )
            data = dst.read_bytes()
    finally:
        logging.getLogger().removeFilter(advice)
    return _atomic_write(_resolve_path(path), data)
