"""The plan report: GEMM layers with their plan figures, vector chains as one PL stage."""

from __future__ import annotations

from pathlib import Path

from codesign.boards import load
from codesign.codegen.build import CompileOptions, compile_model
from codesign.examples import models
from codesign.report.plan_report import plan_report


def test_vector_chains_become_one_stream_stage(tmp_path: Path) -> None:
    model = models.ffn_block(tmp_path / "ffn.onnx")
    plan = compile_model(model, tmp_path / "b", CompileOptions(synth=False))
    report = plan_report(plan, load("vek280"))
    kinds = [e["kind"] for e in report["layers"]]
    # the input quantisation feeds both the GEMM and the residual, so it is not fused
    assert kinds[:2] == ["vector:quantize", "vector:dequantize"]
    assert kinds[2] == "gemm" and kinds[4] == "gemm"
    assert kinds[3] == "vector:dequantize+add+quantize"
    assert kinds[5].startswith("vector:dequantize+add+quantize+dequantize+add")
    assert len(report["layers"]) < len(plan.layers)
    gemm = report["layers"][2]
    assert gemm["k_passes"] >= 1 and gemm["gain_over_tempus"] >= 1.0
    assert gemm["padded"][0] >= gemm["M"]
