"""Compile time against graph size: ``to_hardware`` (the pass pipeline) and the whole compile
(frontend + passes + planning + writing a build, as ``codesign compile --no-synth`` in-process)
at 1k, 4k and 16k ONNX nodes, with the ratio per 4x step (the goal: at most 5x per 4x step,
i.e. linear time with room for noise). Times are CPU seconds of this process, measured on this
machine in one run (best of ``--repeat``); ratios between sizes are what to read, not the
seconds. tests/passes/test_pipeline.py counts the passes' work instead, without timing.

Two graph families:

- ``relu-add``: a float chain alternating Relu and Add (of one shared constant) on [1, 64];
- ``qdq-gemm``: a chain of small int8 QDQ layers, each DequantizeLinear(W) -> MatMul -> Add(bias)
  -> Relu -> QuantizeLinear -> DequantizeLinear (16x16 weights, one per layer), so every rule
  family fires once per layer.

Run: .venv/bin/python bench/bench_passes.py [--sizes 1000,4000,16000] [--family relu-add]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codesign.codegen.build import CompileOptions, compile_model
from codesign.frontend import import_model, read_model_bytes
from codesign.passes.pipeline import to_hardware

WIDTH = 64
LAYER = 16


def relu_add_chain(path: Path, n_nodes: int) -> Path:
    """A float chain of ``n_nodes`` nodes alternating Relu and Add(x, c)."""
    nodes, prev = [], "x"
    for i in range(n_nodes):
        out = "y" if i == n_nodes - 1 else f"t{i}"
        if i % 2:
            nodes.append(helper.make_node("Add", [prev, "c"], [out], name=f"add{i}"))
        else:
            nodes.append(helper.make_node("Relu", [prev], [out], name=f"relu{i}"))
        prev = out
    const = numpy_helper.from_array(np.full(WIDTH, 0.5, np.float32), "c")
    return _save(path, nodes, [const], WIDTH, WIDTH)


def qdq_gemm_chain(path: Path, n_nodes: int) -> Path:
    """A chain of int8 QDQ GEMM layers of 6 nodes each, after one input QuantizeLinear."""
    rng = np.random.default_rng(0)
    layers = max(1, (n_nodes - 1) // 6)
    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
        numpy_helper.from_array(np.array(0.01, np.float32), "sw"),
    ]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q0"], name="q_in")]
    for i in range(layers):
        w = rng.integers(-127, 128, (LAYER, LAYER)).astype(np.int8)
        b = rng.normal(size=LAYER).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "y" if i == layers - 1 else f"d{i + 1}"
        nodes += [
            helper.make_node("DequantizeLinear", [f"q{i}", "s", "z"], [f"x{i}"], name=f"dq{i}"),
            helper.make_node("DequantizeLinear", [f"w{i}", "sw", "z"], [f"wd{i}"], name=f"dw{i}"),
            helper.make_node("MatMul", [f"x{i}", f"wd{i}"], [f"m{i}"], name=f"mm{i}"),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"add{i}"),
            helper.make_node("Relu", [f"a{i}"], [f"r{i}"], name=f"relu{i}"),
        ]
        if i == layers - 1:
            nodes.append(helper.make_node("Identity", [f"r{i}"], [out], name="out"))
        else:
            nodes.append(
                helper.make_node("QuantizeLinear", [f"r{i}", "s", "z"], [f"q{i + 1}"], name=f"q{i}")
            )
    return _save(path, nodes, inits, LAYER, LAYER)


def _save(path: Path, nodes: list, inits: list, k: int, n: int) -> Path:
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


FAMILIES: dict[str, Callable[[Path, int], Path]] = {
    "relu-add": relu_add_chain,
    "qdq-gemm": qdq_gemm_chain,
}


def measure(model: Path, root: Path, repeat: int) -> tuple[int, float, float, float]:
    """(ONNX nodes, frontend s, to_hardware s, whole compile s) of one model, the best of
    ``repeat`` runs, in CPU seconds of this process (other load on the machine counts less)."""
    data = read_model_bytes(model, 1 << 31)
    nodes = len(onnx.load_from_string(data).graph.node)
    best = [float("inf")] * 3
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        kg = import_model(model, (), 1 << 31, data)
        t1 = time.process_time()
        gc.collect()  # not to charge the passes with collecting what the frontend left
        t1b = time.process_time()
        to_hardware(kg, source=str(model))
        t2 = time.process_time()
        del kg
        gc.collect()
        t3 = time.process_time()
        compile_model(model, root / "build", CompileOptions(force=True, synth=False))
        t4 = time.process_time()
        best = [min(b, t) for b, t in zip(best, (t1 - t0, t2 - t1b, t4 - t3), strict=True)]
    return nodes, *best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,4000,16000", help="ONNX node counts, 4x apart")
    ap.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per size")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    families = list(FAMILIES) if args.family == "all" else [args.family]
    root = Path(tempfile.mkdtemp(prefix="codesign-bench-passes-"))
    try:
        print(
            f"{'family':<10}{'nodes':>8}{'frontend s':>12}{'to_hardware s':>15}"
            f"{'x step':>8}{'compile s':>11}{'x step':>8}"
        )
        for family in families:
            prev: tuple[int, float, float] | None = None
            for size in sizes:
                model = FAMILIES[family](root / f"{family}-{size}.onnx", size)
                nodes, t_front, t_hw, t_all = measure(model, root, args.repeat)
                step_hw = step_all = ""
                if prev is not None:
                    scale = nodes / prev[0]  # ratios normalised to a 4x step in nodes
                    step_hw = f"{(t_hw / prev[1]) ** (np.log(4) / np.log(scale)):.2f}"
                    step_all = f"{(t_all / prev[2]) ** (np.log(4) / np.log(scale)):.2f}"
                print(
                    f"{family:<10}{nodes:>8}{t_front:>12.3f}{t_hw:>15.3f}{step_hw:>8}"
                    f"{t_all:>11.3f}{step_all:>8}",
                    flush=True,
                )
                prev = (nodes, t_hw, t_all)
        print(
            "x step: time ratio per 4x more nodes (linear: 4, quadratic: 16; the goal: <= 5). "
            "CPU seconds of this process on this machine, best of --repeat; "
            "compile = `codesign compile --no-synth` in-process."
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
