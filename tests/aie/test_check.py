"""``codesign check``: the generated AIE kernels compile without a warning and match the
simulator bit for bit on the example models; a damaged kernel or weight is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import codesign
from codesign.cli import main
from codesign.codegen.check import CheckResult, check_build, checkers, register_checker
from codesign.examples import models
from codesign.examples.attention import attention_core

pytestmark = [
    pytest.mark.gxx,
    pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++"),
]

CASES = {
    "float_bf16": (lambda p: models.float_mlp(p), "2x8"),
    "float_bf16_k_passes": (lambda p: models.float_mlp(p, dims=(4096, 16, 8)), "1x2"),
    "qdq_per_tensor": (lambda p: models.qdq_mlp(p), "2x8"),
    "qdq_per_channel": (lambda p: models.qdq_mlp(p, per_channel=True), "2x8"),
    "qdq_uint8": (lambda p: models.qdq_mlp(p, activation_type="uint8", reduce_range=True), "2x8"),
    "int16_odd": (lambda p: models.qdq_gemm(p, 7, 100, 33, dtype="int16"), "2x8"),
    "dynamic": (lambda p: models.dynamic_mlp(p, reduce_range=True), "2x8"),
    "odd_7x100x33": (lambda p: models.qdq_gemm(p, 7, 100, 33), "2x8"),
    "k_passes_int8": (lambda p: models.qdq_gemm(p, 16, 4096, 16), "1x2"),
    "dynamic_1x1_only_core": (lambda p: models.dynamic_mlp(p, reduce_range=True), "1x1"),
    "reuse_a_panel_128x768x768": (lambda p: models.qdq_gemm(p, 128, 768, 768), "2x8"),
    "three_position_chain": (lambda p: models.qdq_gemm(p, 9, 300, 20, per_channel=True), "2x3"),
    # batched products (QK^T, attention x V) head by head, bf16 and uint8 with both zero points
    "attention_bf16": (lambda p: attention_core(p, transpose_out=False), "2x8"),
    "attention_qdq": (lambda p: attention_core(p, quantize=True, transpose_out=False), "2x8"),
    "attention_qdq_int8_1x2": (
        lambda p: attention_core(
            p, quantize=True, activation_type="int8", q_len=9, kv_len=40, transpose_out=False
        ),
        "1x2",
    ),
}


@pytest.mark.slow(seconds=100)
@pytest.mark.parametrize("case", sorted(CASES))
def test_check_passes_on_example_models(case: str, tmp_path: Path) -> None:
    make, block = CASES[case]
    build = codesign.compile(make(tmp_path / "m.onnx"), board="vek280", block=block)
    results = [r for r in check_build(build) if r.part == "aie"]
    gemms = [
        layer.name
        for layer in build.plan.layers
        if layer.kind in ("gemm", "batched_matmul")  # every layer on the block
    ]
    assert [r.layer for r in results] == ["graph", *gemms]
    assert results[0].compiled and results[0].matched, results[0]  # graph.h as the harness runs it
    results = results[1:]
    assert all(r.compiled and r.matched and r.max_diff == 0 for r in results), results
    if case.endswith("k_passes"):
        assert any(
            layer.schedule.k_passes > 1 for layer in build.plan.layers if layer.kind == "gemm"
        )


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model = models.qdq_mlp(tmp_path / "m.onnx", per_channel=True)
    return codesign.compile(model, board="vek280", block="2x8").save(tmp_path / "build")


def test_cli_check_prints_the_table_and_exits_0(saved: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["check", str(saved)])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "fc0_matmul" in out and "fc1_matmul" in out and "matched" in out


def test_cli_check_takes_a_relative_build_path(saved: Path, capsys, monkeypatch) -> None:
    # the checkers run g++ in their own work directories: a relative path must still resolve
    monkeypatch.chdir(saved.parent)
    with pytest.raises(SystemExit) as e:
        main(["check", saved.name])
    assert e.value.code == 0, capsys.readouterr().err


def test_a_changed_rounding_mode_is_a_mismatch_exit_3(saved: Path, capsys) -> None:
    # the requantisation SRS of layer 0 rounds down instead of to even: the x86 run differs
    src = saved / "aie" / "kernels" / "gemm0.cc"
    text = src.read_text()
    marker = "// requantise"
    head, tail = text.split(marker)
    src.write_text(head + marker + tail.replace("rounding_mode::conv_even", "rounding_mode::floor"))
    with pytest.raises(SystemExit) as e:
        main(["check", str(saved)])
    assert e.value.code == 3
    captured = capsys.readouterr()
    assert "fc0_matmul" in captured.err and "differ" in captured.err


def test_a_kernel_warning_fails_to_compile(saved: Path) -> None:
    src = saved / "aie" / "kernels" / "gemm1.cc"
    src.write_text(src.read_text() + "\nstatic int unused_by_anyone;\n")
    results = [r for r in check_build(codesign.load_build(saved)) if r.part == "aie"]
    assert results and not any(r.compiled for r in results)
    assert "gemm1.cc" in results[0].detail


def test_a_graph_without_a_cascade_is_a_mismatch(saved: Path) -> None:
    graph = saved / "aie" / "graph.h"
    line = "adf::connect<adf::cascade>(core_1_3.out[0], core_1_4.in[2]);"
    assert line in graph.read_text()
    graph.write_text(graph.read_text().replace(line, ""))
    results = check_build(codesign.load_build(saved))
    row = next(r for r in results if r.layer == "graph")
    assert row.compiled and not row.matched and "core_1_3.out[0]" in row.detail


def test_a_memory_tile_buffer_without_an_access_pattern_is_a_mismatch(saved: Path) -> None:
    graph = saved / "aie" / "graph.h"
    lines = [x for x in graph.read_text().splitlines(keepends=True) if "adf::read_access(" in x]
    assert lines  # the plan keeps A tiles in memory tiles (reuse dataflow)
    graph.write_text(graph.read_text().replace(lines[0], ""))
    results = check_build(codesign.load_build(saved))
    row = next(r for r in results if r.layer == "graph")
    assert row.compiled and not row.matched and "access patterns differ" in row.detail, row


def test_a_build_without_aie_code_is_exit_2(saved: Path) -> None:
    shutil.rmtree(saved / "aie")
    with pytest.raises(SystemExit) as e:
        main(["check", str(saved)])
    assert e.value.code == 2


def test_not_a_build_is_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["check", str(tmp_path / "nothing")])
    assert e.value.code == 2


def test_a_registered_checker_runs_with_the_simulator_tensors(saved: Path) -> None:
    seen = {}

    def fake_part(root: Path, plan, env) -> list[CheckResult]:
        seen["env"] = env
        seen["root"] = root
        return [CheckResult("x", "zz-test", True, False, "forced")]

    before = checkers()
    register_checker("zz-test", fake_part)
    try:
        results = check_build(codesign.load_build(saved))
    finally:
        from codesign.codegen import check as check_mod

        check_mod._CHECKERS.clear()
        check_mod._CHECKERS.update(before)
    assert results[-1] == CheckResult("x", "zz-test", True, False, "forced")
    assert seen["root"] == saved
    assert "fc1_mm_QuantizeLinear_Output" in seen["env"]  # every tensor of the run


def test_int16_gemm_with_a_wide_int64_bias(tmp_path: Path) -> None:
    """acc64 biases beyond int32 (as the zero-point fold makes them) reach the kernel whole."""
    from dataclasses import replace

    import numpy as np

    from codesign.ir.data import sha256, stored_bytes
    from codesign.ir.plan import DataFile

    build = codesign.compile(
        models.qdq_gemm(tmp_path / "m.onnx", 7, 100, 33, dtype="int16"), board="vek280", block="2x3"
    )
    plan = build.plan
    (g,) = [layer for layer in plan.layers if layer.kind == "gemm"]
    assert g.bias is None and g.acc_shift > 0
    rng = np.random.default_rng(3)
    # beyond int32, but within it after the SRS by acc_shift (so the outputs do not saturate)
    top = 2 ** (30 + g.acc_shift)
    bias = rng.integers(-top, top, 33).astype(np.int64)
    bias[:4] = [top - 12345, -top + 7, 2**31, -(2**31) - 1]
    blob = stored_bytes(bias, "int64")
    f = DataFile("weights/matmul.bias.bin", "int64", (33,), sha256(blob))
    layers = tuple(replace(x, bias=f) if x is g else x for x in plan.layers)
    wide = replace(build, plan=replace(plan, layers=layers, data={**plan.data, f.sha256: blob}))
    wide._report = None
    results = check_build(wide)
    assert all(r.compiled and r.matched for r in results), results
    # the bias moved the outputs: the check compared different numbers than without it
    env = wide.simulate(seed=0)
    assert not np.array_equal(env["output"], build.simulate(seed=0)["output"])
