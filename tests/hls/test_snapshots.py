"""Snapshots of the generated PL and Vitis text (tests/hls/snapshots/), and byte-determinism.

A change to the generated text fails here; when it is intended, regenerate the snapshots with
``CODESIGN_UPDATE_SNAPSHOTS=1 pytest tests/hls/test_snapshots.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import codesign
from tests.hls.conftest import MODELS

SNAPSHOTS = Path(__file__).parent / "snapshots"
#: the generated text files of a build that are snapshot-tested (data and golden/ are not text)
TEXT = (
    "hls/*.h",
    "hls/*.cpp",
    "hls/*.cfg",
    "hls/arena.json",
    "system.cfg",
    "Makefile",
    "host/host.cpp",
    "README.md",
)


def _text_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for pattern in TEXT
        for p in sorted(root.glob(pattern))
    }


@pytest.mark.parametrize("name", ["qdq", "float", "movement"])
def test_generated_text_matches_the_snapshots(saved, name):
    root, _ = saved(name)
    files = _text_files(root)
    snap = SNAPSHOTS / name
    if os.environ.get("CODESIGN_UPDATE_SNAPSHOTS"):
        for rel, data in files.items():
            (snap / rel).parent.mkdir(parents=True, exist_ok=True)
            (snap / rel).write_bytes(data)
    stored = {
        p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()
    }
    assert sorted(stored) == sorted(files)
    changed = [rel for rel in files if files[rel] != stored[rel]]
    assert not changed, f"generated text differs from tests/hls/snapshots/{name}: {changed}"


def test_compiling_twice_gives_identical_bytes(tmp_path):
    model = MODELS["qdq_pc"](tmp_path / "m.onnx")
    builds = []
    for i in range(2):
        b = codesign.compile(model, board="vek280", block="2x8", synth=False)
        b.save(tmp_path / f"b{i}")
        builds.append(tmp_path / f"b{i}")
    files = [
        {p.relative_to(r).as_posix(): p.read_bytes() for p in sorted(r.rglob("*")) if p.is_file()}
        for r in builds
    ]
    assert files[0] == files[1]
    assert any(k.startswith("hls/") for k in files[0]) and "golden/golden.json" in files[0]
