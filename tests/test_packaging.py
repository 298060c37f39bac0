"""pyproject lists every package of the folder -> namespace mapping."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = cfg["package-dir"]
    listed = set(cfg["packages"])
    found = set()
    for ns, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([ns, *rel.parts]) if rel.parts else ns)
    # subfolders of codesign/ that are mapped elsewhere are not duplicates
    assert found - listed == set(), f"add to pyproject packages: {sorted(found - listed)}"
