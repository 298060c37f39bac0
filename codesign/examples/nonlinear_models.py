"""Example models with the nonlinear ops (built in code, no downloads).

:func:`masked_norm_block` is a small hand-built graph that takes both nonlinear kinds (and the
mask ops) through the whole flow: ``Gemm -> LayerNormalization -> Gelu -> (padding mask from an
int64 attention_mask: Equal / Where with -inf) -> Softmax -> MatMul``, plus the element-wise
Erf, Tanh, Sigmoid, Div, Pow, Sqrt, Neg and ReduceMean on a side branch added back in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codesign.examples.models import PathLike, _save


def masked_norm_block(
    path: PathLike, batch: int = 4, d_in: int = 32, seq: int = 16, d_out: int = 8, seed: int = 0
) -> Path:
    """Write the model; inputs ``x`` [batch, d_in] float32 and ``attention_mask`` [batch, seq]
    int64 (1 = keep, 0 = pad); outputs ``y`` [batch, d_out] and ``p`` [batch, seq] (the masked
    softmax). Returns the path."""
    rng = np.random.default_rng(seed)

    def init(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, name)

    inits = [
        init("w1", rng.normal(0, 0.3, (d_in, seq)).astype(np.float32)),
        init("b1", rng.normal(0, 0.1, (seq,)).astype(np.float32)),
        init("gamma", rng.normal(1, 0.2, (seq,)).astype(np.float32)),
        init("beta", rng.normal(0, 0.2, (seq,)).astype(np.float32)),
        init("w2", rng.normal(0, 0.3, (seq, d_out)).astype(np.float32)),
        init("zero", np.array(0, np.int64)),
        init("neg_inf", np.array(-np.inf, np.float32)),
        init("two", np.array(2.0, np.float32)),
        init("three", np.array(3.0, np.float32)),
        init("last", np.array([-1], np.int64)),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node(
            "LayerNormalization", ["h", "gamma", "beta"], ["n"], name="ln", epsilon=1e-5
        ),
        helper.make_node("Gelu", ["n"], ["a"], name="gelu"),
        # side branch: element-wise functions, added back
        helper.make_node("Erf", ["n"], ["e1"], name="erf"),
        helper.make_node("Tanh", ["e1"], ["e2"], name="tanh"),
        helper.make_node("Sigmoid", ["e2"], ["e3"], name="sigmoid"),
        helper.make_node("Pow", ["e3", "two"], ["e4"], name="pow"),
        helper.make_node("Sqrt", ["e4"], ["e5"], name="sqrt"),
        helper.make_node("Div", ["e5", "three"], ["e6"], name="div"),
        helper.make_node("Neg", ["e6"], ["e7"], name="neg"),
        helper.make_node("ReduceMean", ["e7", "last"], ["e8"], name="mean", keepdims=1),
        helper.make_node("Add", ["a", "e8"], ["s"], name="add"),
        # padding mask: positions with attention_mask == 0 get -inf before the softmax
        helper.make_node("Equal", ["attention_mask", "zero"], ["pad"], name="is_pad"),
        helper.make_node("Where", ["pad", "neg_inf", "s"], ["masked"], name="mask"),
        helper.make_node("Softmax", ["masked"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "w2"], ["y"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "masked_norm_block",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, d_in]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [batch, seq]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, d_out]),
            helper.make_tensor_value_info("p", TensorProto.FLOAT, [batch, seq]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return _save(model, path)


def padding_mask(batch: int, seq: int, lengths: list[int]) -> np.ndarray:
    """An int64 attention mask [batch, seq]: 1 for the first ``lengths[i]`` positions, else 0."""
    m = np.zeros((batch, seq), np.int64)
    for i, n in enumerate(lengths):
        m[i, :n] = 1
    return m
