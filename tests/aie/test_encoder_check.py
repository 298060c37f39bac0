"""Issue 13's done-when for a transformer: ``codesign check`` passes on a torch
``nn.TransformerEncoderLayer`` (dynamo export, d_model 64, 4 heads, FFN 128, sequence 16).

Every row compiles without a warning and matches the simulator bit for bit: the GEMMs and the
two batched products (QK^T, attention x V) on the AIE block, the layer norms on the AIE cores
(moved there: the cost model puts them on the PL, since their rows would pad the GEMMs' tiles
to larger buffer ports), the softmax, transposes, QKV-split gathers and element-wise units on
the PL, and the PL sequencer running one whole inference."""

from __future__ import annotations

import dataclasses
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
    compiled = codesign.compile(path, synth=False)
    layers = compiled.plan.layers
    assert {x.unit for x in layers if x.kind == "rownorm" and x.fn == "layernorm"} == {"pl"}
    compiled.plan = dataclasses.replace(
        compiled.plan,
        layers=tuple(
            dataclasses.replace(x, placement="aie")
            if x.kind == "rownorm" and x.fn == "layernorm"
            else x
            for x in layers
        ),
    )
    root = compiled.save(tmp_path / "b")
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


@pytest.mark.slow(seconds=180)
@pytest.mark.gxx
def test_codesign_check_passes_on_two_kernel_groups(tmp_path: Path) -> None:
    """quantize_dynamic of a Hugging Face BERT layer: int8 GEMMs and bf16 attention products on
    two kernel groups, each with C PLIOs of its own (tests/aie/test_graph.py). Every kernel, PL
    mover and the sequencer match the simulator; the sequencer runs as two launches around the
    Host partition that dynamic quantisation leaves (its padding mask: GatherND, And), which the
    check runs between them; the partition runner itself runs when onnxruntime's C header is
    found (skipped otherwise)."""
    pytest.importorskip("transformers")
    from codesign.aie.emit import group_tags
    from codesign.examples.hf_models import HfConfig, export_hf, quantize
    from codesign.hls import pl

    cfg = HfConfig(layers=1, hidden=32, heads=2, ffn=64, seq=16, vocab=64)
    src = export_hf("bert", tmp_path / "b.onnx", cfg, dynamo=True)
    model = quantize(src, tmp_path / "dynamic.onnx", "dynamic", "bert", cfg)
    root = codesign.compile(model, synth=False).save(tmp_path / "b")
    build = codesign.load_build(root)
    assert group_tags(build.plan) == ["acc32", "accfloat"]
    # each group is a block of cores of its own: the report counts both (modelled)
    used = {r["resource"]: r["used"] for r in build.report()["resources"]}
    assert used["AIE cores"] == 2 * build.plan.block.chains * build.plan.block.cascade
    rows = check_build(build)
    assert [st.segment for st in pl.stages(build.plan)] == [0, -1, 1]
    bad = [r for r in rows if r.failed]
    assert not bad, bad
    assert [r.matched for r in rows if r.part == "pl:sequencer"] == [True]
    assert sum(r.part == "aie" for r in rows) >= 6  # every GEMM and batched product
