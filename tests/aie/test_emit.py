"""Snapshot tests of the generated AIE text (tests/aie/snapshots/) and byte-determinism.

Regenerate the snapshots after an intended change with
``CODESIGN_UPDATE_SNAPSHOTS=1 pytest tests/aie/test_emit.py`` and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import codesign
from codesign.aie.emit import comment_safe, emit_files
from codesign.examples import models
from codesign.examples.attention import attention_core

SNAPSHOTS = Path(__file__).with_name("snapshots")

CASES = {
    "qdq_per_channel_2x8": (lambda p: models.qdq_mlp(p, per_channel=True), "2x8"),
    "bf16_k_passes_1x2": (lambda p: models.float_mlp(p, dims=(4096, 16, 8)), "1x2"),
    "int16_odd_2x3": (lambda p: models.qdq_gemm(p, 7, 100, 33, dtype="int16"), "2x3"),
    "dynamic_uint8_1x1": (lambda p: models.dynamic_mlp(p, reduce_range=True), "1x1"),
    # batched products (QK^T, attention x V) with both zero points, uint8 re-centred
    "attention_qdq_2x8": (
        lambda p: attention_core(p, quantize=True, transpose_out=False),
        "2x8",
    ),
}


def _files(case: str, tmp_path: Path) -> dict[str, bytes]:
    make, block = CASES[case]
    build = codesign.compile(make(tmp_path / "model.onnx"), board="vek280", block=block)
    return dict(emit_files(build.plan))


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_text_matches_its_snapshot(case: str, tmp_path: Path) -> None:
    files = _files(case, tmp_path)
    root = SNAPSHOTS / case
    if os.environ.get("CODESIGN_UPDATE_SNAPSHOTS"):
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
    stored = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    assert sorted(stored) == sorted(files), "the set of generated files changed"
    for rel, data in files.items():
        assert data == stored[rel], f"{case}/{rel} differs from its snapshot"


def test_compiling_twice_gives_identical_bytes(tmp_path: Path) -> None:
    model = models.qdq_mlp(tmp_path / "m.onnx", per_channel=True)
    a = codesign.compile(model, board="vek280", block="2x8").save(tmp_path / "a")
    b = codesign.compile(model, board="vek280", block="2x8").save(tmp_path / "b")
    names = sorted(p.relative_to(a).as_posix() for p in (a / "aie").rglob("*") if p.is_file())
    assert "aie/graph.h" in names and "aie/kernels/gemm0.cc" in names
    for rel in [*names, "aie.cfg"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_every_gemm_kind_file_is_in_the_build_manifest(tmp_path: Path) -> None:
    import json

    model = models.qdq_mlp(tmp_path / "m.onnx")
    out = codesign.compile(model, board="vek280", block="2x8").save(tmp_path / "b")
    listed = json.loads((out / "manifest.json").read_text())["files"]
    for rel in ("aie/graph.h", "aie/graph.cpp", "aie.cfg", "aie/kernels/dispatch_acc32.cc"):
        assert rel in listed


def test_model_names_cannot_break_out_of_comments() -> None:
    assert comment_safe("a\n#include <evil>\r*/") == "a?#include <evil>?*/"
