"""One compiled graph serves every layer: the GEMMs' tiles come from at most V kernel tile
variants, and the AIE emitter writes one kernel per variant (and epilogue form), not per layer;
the shared kernels still match the simulator bit for bit on x86 (``codesign check``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.aie.emit import emit_files, graph_context
from codesign.codegen.check import check_build


def qdq_stack(path: Path, dims: list[tuple[int, int]], seq: int = 8) -> Path:
    """MatMuls between QuantizeLinear/DequantizeLinear pairs with int8 weights and one activation
    scale and zero point (the static QDQ per-tensor form, as a hand-built graph)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.float32(0.05), "s"),
        numpy_helper.from_array(np.int8(0), "z"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s", "z"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "s", "z"], ["x0"]),
    ]
    cur = "x0"
    for i, (k, n) in enumerate(dims):
        w = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
        inits += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(np.float32(0.02 / np.sqrt(k)), f"sw{i}"),
            numpy_helper.from_array(np.int8(0), f"zw{i}"),
        ]
        nodes += [
            helper.make_node("DequantizeLinear", [f"w{i}", f"sw{i}", f"zw{i}"], [f"wd{i}"]),
            helper.make_node("MatMul", [cur, f"wd{i}"], [f"mm{i}"], name=f"mm{i}"),
            helper.make_node("QuantizeLinear", [f"mm{i}", "s", "z"], [f"q{i}"]),
            helper.make_node("DequantizeLinear", [f"q{i}", "s", "z"], [f"x{i + 1}"]),
        ]
        cur = f"x{i + 1}"
    nodes.append(helper.make_node("Identity", [cur], ["output"]))
    graph = helper.make_graph(
        nodes,
        "qdq_stack",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [seq, dims[0][0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [seq, dims[-1][1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


DIMS = [(32, 32), (32, 128), (128, 32), (32, 32), (32, 128), (128, 32)]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    path = qdq_stack(tmp_path_factory.mktemp("stack") / "stack.onnx", DIMS)
    return codesign.compile(path, board="vek280", block="2x4")


def test_one_kernel_per_variant_not_per_layer(build) -> None:
    plan = build.plan
    gemms = plan.gemms()
    ex = plan.execution
    assert len(gemms) == len(DIMS) and len(ex.variants) <= ex.max_variants
    files = dict(emit_files(plan))
    kernels = sorted(p for p in files if re.fullmatch(r"aie/kernels/gemm\d+\.cc", p))
    # the same epilogue form everywhere, so one kernel per tile variant in use
    assert len(kernels) == len({g.schedule.tile for g in gemms}) < len(gemms)
    ctx = graph_context(plan)
    for g, lc in zip(gemms, ctx["layers"], strict=True):
        k = ctx["kernels"][lc["kernel"]]
        assert (k["m"], k["k"], k["n"]) == (g.schedule.tile.m, g.schedule.tile.k, g.schedule.tile.n)
        text = files[f"aie/kernels/{lc['fn']}.cc"].decode()
        assert f"{k['m']}x{k['k']}x{k['n']}" in text
    # every layer's dispatch case calls its shared kernel
    dispatch = files["aie/kernels/dispatch_acc32.cc"].decode()
    for lc in ctx["layers"]:  # the case is the plan layer number the control records carry
        assert re.search(rf"case {lc['id']}:[^\n]*\s+{lc['fn']}_first\(", dispatch), lc["id"]


@pytest.mark.gxx
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_shared_kernels_match_the_simulator_on_x86(build, tmp_path: Path) -> None:
    saved = build.save(tmp_path / "b")
    rows = [r for r in check_build(codesign.load_build(saved)) if r.part in ("aie", "graph")]
    assert rows and all(r.compiled and r.matched for r in rows), [
        (r.layer, r.detail) for r in rows if not (r.compiled and r.matched)
    ]
