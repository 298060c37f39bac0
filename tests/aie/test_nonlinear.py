"""Nonlinear layers the cost model places on the AIE block (codesign/aie/nonlinear.py): their
kernels compile without a warning and match the simulator bit for bit on x86, the PL sequencer
streams them through the block, a damaged kernel is caught, and the text is deterministic."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.aie import nonlinear as aie_nl
from codesign.codegen.check import check_build

pytestmark = [
    pytest.mark.gxx,
    pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++"),
]


def _model(path: Path, rows: int, n: int, fn: str) -> Path:
    """MatMul -> fn -> MatMul, x [rows, 32]; fn over rows of n."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (32, n)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (n, 8)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(1, 0.2, (n,)).astype(np.float32), "gamma"),
        numpy_helper.from_array(rng.normal(0, 0.2, (n,)).astype(np.float32), "beta"),
    ]
    node = {
        "softmax": helper.make_node("Softmax", ["h"], ["s"], "fn_softmax", axis=-1),
        "exp": helper.make_node("Exp", ["h"], ["s"], "fn_exp"),
        "layernorm": helper.make_node(
            "LayerNormalization", ["h", "gamma", "beta"], ["s"], "fn_layernorm", axis=-1
        ),
        "rmsnorm": helper.make_node(
            "RMSNormalization", ["h", "gamma"], ["s"], "fn_rmsnorm", axis=-1, epsilon=1e-3
        ),
    }[fn]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], "mm1"), node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, 8])],
        inits,
    )
    graph.node.append(helper.make_node("MatMul", ["s", "w2"], ["y"], "mm2"))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]), path)
    return path


def _aie_layers(build: codesign.Build) -> list[str]:
    return [layer.name for layer in build.plan.layers if aie_nl.has_kernel(layer)]


CASES = {
    # (rows, n, fn, block, forced): odd row counts leave padding rows in the last iteration.
    # The cost model puts every one of these on the PL (their rows would pad these small GEMMs'
    # tiles to larger buffer ports: test_the_placement_sees_the_padding_its_rows_cause), so
    # each is moved to the AIE here to run the kernels' paths (one core without a cascade;
    # middle cores; an element-wise function; the row functions).
    "softmax_2x8": (16, 256, "softmax", "2x8", True),
    "layernorm_2x3_middle_cores": (37, 512, "layernorm", "2x3", True),
    "rmsnorm_2x8": (33, 512, "rmsnorm", "2x8", True),
    "exp_2x3_forced": (37, 96, "exp", "2x3", True),
    "softmax_1x1_only_core_forced": (9, 48, "softmax", "1x1", True),
}


def _force_aie(build: codesign.Build) -> None:
    layers = tuple(
        dataclasses.replace(layer, placement="aie")
        if layer.kind in ("rownorm", "nonlinear")
        else layer
        for layer in build.plan.layers
    )
    build.plan = dataclasses.replace(build.plan, layers=layers)


@pytest.mark.parametrize("case", sorted(CASES))
def test_aie_placed_layers_compile_match_and_stream(case: str, tmp_path: Path) -> None:
    rows, n, fn, block, forced = CASES[case]
    build = codesign.compile(_model(tmp_path / "m.onnx", rows, n, fn), board="vek280", block=block)
    if forced:
        _force_aie(build)
    on_aie = _aie_layers(build)
    assert on_aie == [f"fn_{fn}"]
    results = check_build(build)
    aie = {r.layer: r for r in results if r.part == "aie"}
    for name in on_aie:
        r = aie[name]
        assert r.compiled and r.matched and r.max_diff == 0, r
    (seq,) = [r for r in results if r.part == "pl:sequencer"]
    assert seq.compiled and seq.matched, seq  # rows, parameters, records and results streamed
    assert all(r.matched for r in results), [r for r in results if not r.matched]


def test_the_placement_sees_the_padding_its_rows_cause(tmp_path: Path) -> None:
    """A layernorm whose rows (2 chains x 512 fp32) are larger than the GEMMs' buffer ports
    would make every GEMM stream padded ports: faster on the AIE alone, it goes to the PL once
    that padding is counted. A softmax whose rows fit the ports costs the GEMMs nothing."""
    from codesign.report.plan_report import estimate

    build = codesign.compile(
        _model(tmp_path / "m.onnx", 16, 512, "layernorm"), board="vek280", block="2x8", synth=False
    )
    (row,) = [r for r in estimate(build.plan)["layers"] if r["name"] == "fn_layernorm"]
    options, penalty = row["placement_options_s"], row["aie_port_padding_s"]
    assert row["placement"] == "pl"
    assert penalty > 0
    assert options["aie"] - penalty < options["pl"] < options["aie"], (options, penalty)
    _force_aie(build)
    (forced,) = [r for r in estimate(build.plan)["layers"] if r["name"] == "fn_layernorm"]
    assert forced["aie_port_padding_s"] == penalty  # the same figure, from the finished plan


def test_a_damaged_kernel_is_a_mismatch_and_the_text_is_deterministic(tmp_path: Path) -> None:
    model = _model(tmp_path / "m.onnx", 16, 512, "layernorm")
    builds = [codesign.compile(model, board="vek280", block="2x8") for _ in range(2)]
    for b in builds:
        _force_aie(b)
    one, two = (b.save(tmp_path / name) for b, name in zip(builds, ("one", "two"), strict=True))
    kernels = sorted((one / "aie" / "kernels").glob("rownorm*.cc"))
    assert kernels
    for rel in [*kernels, *(one / "hls").glob("l*_fn_layernorm.h")]:
        assert rel.read_bytes() == (two / rel.relative_to(one)).read_bytes()
    assert (one / "aie" / "kernels" / "nl_math.h").is_file()
    # the parameters step in the wrong order: beta first, so the result must differ
    text = kernels[0].read_text()
    assert "params, params + N" in text
    kernels[0].write_text(text.replace("params, params + N", "params + N, params"))
    build = codesign.load_build(one)
    (r,) = [r for r in check_build(build) if r.part == "aie" and r.layer == "fn_layernorm"]
    assert r.compiled and not r.matched
