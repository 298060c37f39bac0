"""Builds shared by the PL tests (compiled in memory once per session, saved per test dir)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import codesign
from codesign.examples import models

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

#: the example models the PL check covers: float (bf16 GEMM), QDQ per-tensor and per-channel,
#: int16, dynamic, shapes that divide nothing, K > 1 pass, a reshape, data movement
MODELS = {
    "qdq": lambda p: models.qdq_mlp(p),
    "float": lambda p: models.float_mlp(p),
    "qdq_pc": lambda p: models.qdq_mlp(p, per_channel=True),
    "int16": lambda p: models.qdq_gemm(p, 5, 70, 33, dtype="int16", per_channel=True),
    "dynamic": lambda p: models.dynamic_mlp(p),
    "odd": lambda p: models.float_mlp(p, dims=(37, 53, 11), batch=3),
    "kpass": lambda p: models.qdq_mlp(p, dims=(1024, 40, 8), batch=2),
    "reshape": lambda p: models.float_mlp_reshape(p),
    # Split/Concat/Slice/Gather/Expand around a GEMM: the movement kind's PL data movers
    "movement": lambda p: models.movement_block(p),
}

_BUILDS: dict[str, codesign.Build] = {}


def compiled(name: str, tmp: Path) -> codesign.Build:
    """The in-memory build of example ``name`` (made once per session)."""
    if name not in _BUILDS:
        path = MODELS[name](tmp / f"{name}.onnx")
        _BUILDS[name] = codesign.compile(path, board="vek280", block="2x8", synth=False)
    return _BUILDS[name]


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """saved(name) -> (build dir, Build): the example compiled and saved once per session."""
    root = tmp_path_factory.mktemp("pl-builds")
    dirs: dict[str, Path] = {}

    def get(name: str) -> tuple[Path, codesign.Build]:
        b = compiled(name, root)
        if name not in dirs:
            dirs[name] = root / name
            b.save(dirs[name])
        return dirs[name], b

    return get
