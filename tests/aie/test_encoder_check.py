"""Issue 13's done-when for a transformer: ``codesign check`` passes on a torch
``nn.TransformerEncoderLayer`` (dynamo export, d_model 64, 4 heads, FFN 128, sequence 16).

Every row compiles without a warning and matches the simulator bit for bit: the GEMMs and the
two batched products (QK^T, attention x V) on the AIE block, the layer norms the cost model
places on the AIE cores, the softmax, transposes, QKV-split gathers and element-wise units on
the PL, and the PL sequencer running one whole inference."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import codesign
from codesign.codegen.check import check_build


@pytest.mark.slow
@pytest.mark.gxx
def test_codesign_check_passes_on_a_torch_encoder_layer(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    m = torch.nn.TransformerEncoderLayer(
        d_model=64, nhead=4, dim_feedforward=128, batch_first=True, dropout=0.0
    ).eval()
    path = tmp_path / "enc.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            m, (torch.randn(1, 16, 64),), path, dynamo=True, input_names=["x"], output_names=["y"]
        )
    root = codesign.compile(path, synth=False).save(tmp_path / "b")
    build = codesign.load_build(root)
    kinds = {(layer.kind, layer.unit) for layer in build.plan.layers}
    for want in [
        ("gemm", "aie"),
        ("batched_matmul", "aie"),
        ("rownorm", "aie"),
        ("rownorm", "pl"),
        ("transpose", "pl"),
        ("movement", "pl"),
        ("vector", "pl"),
    ]:
        assert want in kinds, (want, kinds)
    rows = check_build(build)
    bad = [r for r in rows if not (r.compiled and r.matched)]
    assert not bad, bad
    parts = {r.part for r in rows}
    assert {"aie", "pl:sequencer", "pl:transpose", "pl:movement:gather"} <= parts, parts
    assert any(p.startswith("pl:rownorm:") for p in parts), parts
