"""The layering contracts (pyproject's [tool.importlinter]) hold: ``lint-imports`` passes.

grimp, which import-linter builds its graph with, walks one package directory, while pyproject
maps other top-level folders (schedulers/, sim/, boards/, rtl/, hls/, aie/) into the codesign
namespace. The test therefore lays the sources out as the installed namespace (a copy of the
.py files under one ``codesign/`` folder) and runs ``lint-imports`` on that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _namespace_tree(dest: Path) -> Path:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for ns, folder in sorted(cfg["package-dir"].items()):
        target = dest.joinpath(*ns.split("."))
        for src in (ROOT / folder).rglob("*.py"):
            rel = src.relative_to(ROOT / folder)
            if ns == "codesign" and rel.parts[0] in {
                n.split(".")[1] for n in cfg["package-dir"] if n != "codesign"
            }:
                continue
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)
    return dest


def test_import_contracts_hold(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail("lint-imports is missing: install the test extra (pip install -e .[test])")
    tree = _namespace_tree(tmp_path / "src")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    r = subprocess.run(
        [str(exe), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "Contracts: 5 kept, 0 broken." in r.stdout
