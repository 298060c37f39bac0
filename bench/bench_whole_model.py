"""Whole-model execution on a BERT-base-shaped stack of GEMMs: compile time, and the modelled
latency on vek280 as one graph run per inference against the per-layer-launch figure (Tempus's
host flow: one launch per GEMM), and the fraction of the 16-core block's peak on its GEMMs.

The stack is 12 layers x [768x768 x 4, 768x3072, 3072x768] at sequence 128 (BERT-base's 72
encoder GEMMs and 85 M weights; attention's activation x activation products, softmax and norms
are not in it), built with onnx's helpers: int8 (static QDQ, per-tensor) and bf16 (float
MatMuls, run as bf16 on the block). Every latency is modelled (codesign.cost); the compile time
is measured, in this one run.

Run: .venv/bin/python bench/bench_whole_model.py [--dtype int8|bf16|both] [--layers N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.boards import load
from codesign.cost.execution import gemm_peak_share
from codesign.cost.variants import MAX_VARIANTS

SEQ, D, FF, LAYERS = 128, 768, 3072, 12
BOARD = "vek280"


def gemm_stack(path: Path, dtype: str, layers: int = LAYERS) -> Path:
    """BERT-base's encoder GEMM shapes, ``layers`` x [4 x DxD, DxFF, FFxD], one after another.

    ``int8``: every MatMul between QuantizeLinear/DequantizeLinear pairs with int8 weights (the
    static QDQ per-tensor form); ``bf16``: float32 MatMuls (compiled as bf16 GEMMs)."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    cur = "input"
    if dtype == "int8":
        inits += [
            numpy_helper.from_array(np.float32(0.05), "s_act"),
            numpy_helper.from_array(np.int8(0), "z_act"),
        ]
        nodes.append(helper.make_node("QuantizeLinear", [cur, "s_act", "z_act"], ["x_q"]))
        nodes.append(helper.make_node("DequantizeLinear", ["x_q", "s_act", "z_act"], ["x_dq"]))
        cur = "x_dq"
    dims = [(D, D)] * 4 + [(D, FF), (FF, D)]
    for layer in range(layers):
        for j, (k, n) in enumerate(dims):
            name = f"l{layer}_{j}"
            if dtype == "int8":
                w = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
                inits += [
                    numpy_helper.from_array(w, f"{name}_w"),
                    numpy_helper.from_array(np.float32(0.02 / np.sqrt(k)), f"{name}_sw"),
                    numpy_helper.from_array(np.int8(0), f"{name}_zw"),
                ]
                nodes += [
                    helper.make_node(
                        "DequantizeLinear",
                        [f"{name}_w", f"{name}_sw", f"{name}_zw"],
                        [f"{name}_wdq"],
                    ),
                    helper.make_node(
                        "MatMul", [cur, f"{name}_wdq"], [f"{name}_mm"], name=f"{name}_matmul"
                    ),
                    helper.make_node(
                        "QuantizeLinear", [f"{name}_mm", "s_act", "z_act"], [f"{name}_q"]
                    ),
                    helper.make_node(
                        "DequantizeLinear", [f"{name}_q", "s_act", "z_act"], [f"{name}_dq"]
                    ),
                ]
                cur = f"{name}_dq"
            else:
                w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
                inits.append(numpy_helper.from_array(w, f"{name}_w"))
                nodes.append(
                    helper.make_node("MatMul", [cur, f"{name}_w"], [f"{name}_mm"], name=name)
                )
                cur = f"{name}_mm"
    nodes.append(helper.make_node("Identity", [cur], ["output"]))
    graph = helper.make_graph(
        nodes,
        f"bert_gemms_{dtype}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [SEQ, D])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [SEQ, D])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


def run(dtype: str, layers: int, root: Path) -> None:
    model = gemm_stack(root / f"stack_{dtype}.onnx", dtype, layers)
    t0, c0 = time.perf_counter(), time.process_time()
    build = codesign.compile(model, board=BOARD)
    t_compile, c_compile = time.perf_counter() - t0, time.process_time() - c0
    report = build.report()
    plan, ex = build.plan, build.plan.execution
    gemms = plan.gemms()
    share = gemm_peak_share(plan, load(BOARD))
    hz = ex.aie_clock_mhz * 1e6
    cores = plan.block.cores
    ops, gemm_s, peak = share.ops, share.gemm_s, share.peak_ops_s
    whole_s = report["totals"]["time_s"]
    per_launch_s = report["totals"]["per_launch_time_s"]
    print(
        f"{dtype}: {len(gemms)} GEMMs, {sum(g.schedule.K * g.schedule.N for g in gemms) / 1e6:.0f} M weights, block {plan.block}"
    )
    print(
        f"  compile (measured):                          {t_compile:8.2f} s wall, "
        f"{c_compile:.2f} s CPU of this process"
    )
    print(f"  latency, one graph run per inference:        {whole_s * 1e3:8.3f} ms (modelled)")
    print(f"  Tempus's host flow: one launch per GEMM:     {per_launch_s * 1e3:8.3f} ms (modelled)")
    print(f"  ratio (per-launch / whole-model):            {per_launch_s / whole_s:8.2f}x")
    print(f"  launch, once per inference:                  {ex.launch_cycles / hz * 1e3:8.3f} ms")
    print(
        f"  GEMMs' share of the {cores}-core block peak:    {ops / gemm_s / peak:8.1%} "
        f"({ops / gemm_s / 1e12:.2f} of {peak / 1e12:.2f} TOPS, launch excluded; "
        f"{ops / whole_s / peak:.1%} with it)"
    )
    shown = ", ".join(f"{v.tile}" for v in ex.variants)
    print(f"  kernel tile variants: {len(ex.variants)} (at most {ex.max_variants}): {shown}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=("int8", "bf16", "both"), default="both")
    ap.add_argument("--layers", type=int, default=LAYERS)
    args = ap.parse_args()
    print(
        f"BERT-base-shaped GEMM stack on {BOARD}: {args.layers} layers x [4 x {D}x{D}, "
        f"{D}x{FF}, {FF}x{D}], sequence {SEQ}; default variants per dtype: {MAX_VARIANTS}"
    )
    with tempfile.TemporaryDirectory(prefix="codesign-whole-") as tmp:
        for dtype in ("int8", "bf16") if args.dtype == "both" else (args.dtype,):
            run(dtype, args.layers, Path(tmp))


if __name__ == "__main__":
    main()
