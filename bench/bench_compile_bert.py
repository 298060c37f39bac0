"""Compile time on a BERT-base-sized stack of quantized linear layers (12 x [4 x 768x768,
768x3072, 3072x768], sequence 128, int8 QDQ, 85 M weights), and where the time goes.

Attention itself is not lowered yet; the stack has the GEMM shapes and weight volume of
BERT-base's encoder. Run: .venv/bin/python bench/bench_compile_bert.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codesign.codegen.build import CompileOptions, compile_model
from codesign.solvers.tiling import _solve_cached

SEQ, D, FF, LAYERS = 128, 768, 3072, 12


def bert_sized_model(path: Path) -> Path:
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "input"
    inits += [
        numpy_helper.from_array(np.float32(0.05), "s_act"),
        numpy_helper.from_array(np.int8(0), "z_act"),
    ]
    nodes.append(helper.make_node("QuantizeLinear", [x, "s_act", "z_act"], ["x_q"]))
    nodes.append(helper.make_node("DequantizeLinear", ["x_q", "s_act", "z_act"], ["x_dq"]))
    cur = "x_dq"
    dims = [(D, D)] * 4 + [(D, FF), (FF, D)]
    for layer in range(LAYERS):
        for j, (k, n) in enumerate(dims):
            name = f"l{layer}_{j}"
            w = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
            inits += [
                numpy_helper.from_array(w, f"{name}_w"),
                numpy_helper.from_array(np.float32(0.02 / np.sqrt(k)), f"{name}_sw"),
                numpy_helper.from_array(np.int8(0), f"{name}_zw"),
            ]
            nodes += [
                helper.make_node(
                    "DequantizeLinear", [f"{name}_w", f"{name}_sw", f"{name}_zw"], [f"{name}_wdq"]
                ),
                helper.make_node(
                    "MatMul", [cur, f"{name}_wdq"], [f"{name}_mm"], name=f"{name}_matmul"
                ),
                helper.make_node("QuantizeLinear", [f"{name}_mm", "s_act", "z_act"], [f"{name}_q"]),
                helper.make_node(
                    "DequantizeLinear", [f"{name}_q", "s_act", "z_act"], [f"{name}_dq"]
                ),
            ]
            cur = f"{name}_dq"
    nodes.append(helper.make_node("Identity", [cur], ["output"]))
    graph = helper.make_graph(
        nodes,
        "bert_sized",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [SEQ, D])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [SEQ, D])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="codesign-bert-"))
    try:
        t0 = time.perf_counter()
        model = bert_sized_model(root / "bert_sized.onnx")
        t_build = time.perf_counter() - t0
        size_mb = model.stat().st_size / 1e6
        _solve_cached.cache_clear()
        t0 = time.perf_counter()
        plan = compile_model(model, root / "build", CompileOptions(synth=False))
        t_compile = time.perf_counter() - t0
        print(
            f"model: {len(plan.gemms())} GEMM layers, {size_mb:.0f} MB (built in {t_build:.1f} s)"
        )
        print(f"codesign compile: {t_compile:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
