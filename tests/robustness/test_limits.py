"""Limits: simulations that would not fit the host's memory are refused with the estimate, the
estimate bounds what the simulator really allocates, and CP-SAT fallbacks are reported."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from codesign.boards import load as load_board
from codesign.examples import models
from codesign.schedulers.tempus import DEFAULT_BLOCK, tiling_problem
from codesign.sim import memory
from codesign.sim.functional import Simulator
from codesign.sim.inputs import random_inputs
from codesign.solvers.tiling import enumerate_tile, solve_tile


def _one_error_line(r, *fragments: str) -> str:
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert r.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.code, r.err)
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def test_simulation_beyond_memory_is_refused(cli, tmp_path: Path) -> None:
    """2^31-1 rows: the compile is cheap, the simulation would need hundreds of GiB."""
    model = models.dynamic_dim_model(tmp_path / "tall.onnx", dims=(2, 2))
    build = tmp_path / "b"
    r = cli("compile", model, "-o", build, "--shape", f"input={2**31 - 1}x2")
    assert r.code == 0, r.err
    r = cli("simulate", build)
    line = _one_error_line(r, str(build), "simulating this build needs about", "is available")
    assert "GiB" in line and "MemAvailable" in line or "cgroup" in line


def test_refusal_uses_the_available_memory(cli, tmp_path: Path, monkeypatch) -> None:
    model = models.qdq_gemm(tmp_path / "g.onnx", 64, 256, 128)
    build = tmp_path / "b"
    assert cli("compile", model, "-o", build).code == 0
    monkeypatch.setattr(memory, "available", lambda: (1000, "a test limit"))
    _one_error_line(cli("simulate", build), "only 0.00 GiB is available (a test limit)")
    monkeypatch.setattr(memory, "available", lambda: (2**40, "a test limit"))
    assert cli("simulate", build).code == 0


def test_available_reads_the_host() -> None:
    room, source = memory.available()
    assert room > 0 and source


@pytest.mark.parametrize(
    "make",
    [
        lambda p: models.qdq_gemm(p, 96, 256, 160),
        lambda p: models.qdq_gemm(p, 33, 100, 70, dtype="int16"),
        lambda p: models.float_mlp(p, dims=(64, 128, 32), batch=48),
        lambda p: models.ffn_block(p, d_model=32, d_ff=64, seq=24),
    ],
    ids=["int8", "int16", "bf16", "ffn"],
)
def test_estimate_bounds_the_simulators_peak(tmp_path: Path, make) -> None:
    """tracemalloc sees numpy's allocations: the estimate must not be below the real peak."""
    from codesign.codegen.build import CompileOptions, compile_model

    model = make(tmp_path / "m.onnx")
    plan = compile_model(model, tmp_path / "b", CompileOptions())
    est = memory.estimate(plan)
    sim = Simulator(tmp_path / "b")
    inputs = random_inputs(plan, 0)
    tracemalloc.start()
    try:
        sim.run(inputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= est.total, (peak, est)
    print(f"peak {peak} estimate {est.total} ratio {est.total / peak:.2f}")


def test_forced_solver_fallback_is_reported(cli, tmp_path: Path) -> None:
    model = models.qdq_gemm(tmp_path / "g.onnx", 7, 100, 33)
    build = tmp_path / "b"
    r = cli("compile", model, "-o", build, "--solver-time-limit", "0")
    assert r.code == 0, r.err
    assert "solver fallback 'matmul'" in " ".join(r.out.split())
    schedule = json.loads((build / "schedule.json").read_text())
    solver = next(layer for layer in schedule["layers"] if layer["kind"] == "gemm")["schedule"][
        "solver"
    ]
    assert solver["status"] == "UNKNOWN"
    assert "exhaustive search chose the tile" in solver["fallback"]
    report = json.loads(cli("report", build, "--json").out)
    gemm = next(e for e in report["layers"] if e["kind"] == "gemm")
    assert "exhaustive search chose the tile" in gemm["solver_fallback"]
    assert any("solver fallback" in n for n in report["notes"])
    assert "solver fallback in 'matmul'" in " ".join(cli("report", build).out.split())
    # the fallback finds the same optimum as CP-SAT would
    normal = tmp_path / "n"
    assert cli("compile", model, "-o", normal).code == 0
    optimal = json.loads((normal / "schedule.json").read_text())
    tile = next(layer for layer in optimal["layers"] if layer["kind"] == "gemm")["schedule"]
    assert tile["solver"]["status"] == "OPTIMAL"
    assert (
        tile["tile"]
        == next(layer for layer in schedule["layers"] if layer["kind"] == "gemm")["schedule"][
            "tile"
        ]
    )


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_bad_solver_time_limit(cli, tmp_path: Path, value: str) -> None:
    model = models.qdq_gemm(tmp_path / "g.onnx", 7, 100, 33)
    r = cli("compile", model, "-o", tmp_path / "b", "--solver-time-limit", value)
    _one_error_line(r, "--solver-time-limit")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("value", ["0", "-5M", "big", "1.5G"])
def test_bad_max_model_size(cli, tmp_path: Path, value: str) -> None:
    model = models.qdq_gemm(tmp_path / "g.onnx", 7, 100, 33)
    _one_error_line(cli("compile", model, "-o", tmp_path / "b", "--max-model-size", value))


def test_huge_gemm_falls_back_without_overflow() -> None:
    """Cycle bounds beyond CP-SAT's int64 range: a reported exhaustive search, quickly."""
    p = tiling_problem(load_board("vek280"), 2**20, 4096, 2**19, "int8", DEFAULT_BLOCK)
    tile, report = solve_tile(p)
    assert report.status == "NOT_RUN" and "64-bit" in report.fallback
    assert (tile, report.objective) == enumerate_tile(p)
    mm, mk, mn = p.native
    assert p.memory(tile.m // mm, tile.k // mk, tile.n // mn) <= p.memory_budget


def test_exhaustive_search_is_exact_beyond_int64() -> None:
    """A problem whose worst tilings overflow int64 is searched with Python integers."""
    p = tiling_problem(load_board("vek280"), 2**31 - 1, 2, 2**31 - 1, "int16", DEFAULT_BLOCK)
    tile, cycles = enumerate_tile(p)
    assert cycles > 0 and isinstance(cycles, int)
    # the bound is in 0.1 ps units (codesign.solvers.tiling.UNIT_S): hours of GEMM exceed int64
    assert cycles == p.lower_bound(*p.factors(tile))
