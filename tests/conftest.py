"""Shared fixtures: run the CLI in-process with its real error mapping; the slow tests first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from codesign.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Call ``codesign ARGS...`` in-process; return exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def _seconds(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    return 0.0 if mark is None else float(mark.kwargs.get("seconds", 60))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first, the longest first (``slow(seconds=...)``: measured on a
    loaded 2-core machine), the rest in collection order: the suite runs on one pytest-xdist
    worker per core, and a long test that started last would run alone at the end."""
    items.sort(key=lambda item: -_seconds(item))
