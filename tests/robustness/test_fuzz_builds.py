"""Fuzz damaged builds: schedule.json values replaced (wrong types, nulls, out-of-range numbers,
paths out of the build) and weight files cut, then ``simulate`` and ``report``. Only exit 0, or 2
with one error line, passes. (Before the plan checks, 30 kinds of damage crashed them.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.examples import models
from codesign.sim import memory
from tests.robustness import harness

EXAMPLES = max(150, int(os.environ.get("CODESIGN_FUZZ_EXAMPLES", "0")) // 10)

BASES = {
    "qdq_gemm_bias": lambda p: models.qdq_mlp(
        p, dims=(8, 16, 4), batch=2, per_channel=True, use_gemm=True
    ),
    "float": lambda p: models.float_mlp(p, dims=(8, 16, 4), batch=2),
    "dynamic": lambda p: models.dynamic_mlp(p, dims=(8, 16, 4), batch=2, reduce_range=True),
    "int16": lambda p: models.qdq_gemm(p, 3, 8, 5, dtype="int16"),
}

VALUES = st.one_of(
    st.sampled_from(
        [None, 0, -1, 1, 2, 3, 7, 2**40, -(2**63), "x", "", [], {}, 1.5, True, [1, 2], [0]]
    ),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "weights", "int8", "bf16", "tempus.b/1"]),
    st.integers(-5, 70000),
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fuzz_builds")
    out = {}
    for name, make in BASES.items():
        r = harness.run_cli("compile", make(root / f"{name}.onnx"), "-o", root / name, "--no-synth")
        assert r.code == 0, r.err
        plan = json.loads((root / name / "schedule.json").read_text())
        out[name] = (plan, [p for p in _paths(plan) if p])
    return root, out


def test_damaged_builds(builds, monkeypatch: pytest.MonkeyPatch) -> None:
    root, bases = builds
    monkeypatch.setattr(memory, "available", lambda: (512 * 2**20, "the fuzz test's limit"))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize="CODESIGN_FUZZ_EXAMPLES" not in os.environ,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        base=st.sampled_from(sorted(bases)),
        edits=st.lists(st.tuples(st.integers(0, 10**6), VALUES), min_size=1, max_size=3),
        cut=st.one_of(st.none(), st.integers(0, 10**6)),
    )
    def one_case(base: str, edits: list, cut: int | None) -> None:
        plan, paths = bases[base]
        data = json.loads(json.dumps(plan))
        for index, value in edits:
            path = paths[index % len(paths)]
            obj = data
            try:
                for key in path[:-1]:
                    obj = obj[key]
                obj[path[-1]] = value
            except (KeyError, IndexError, TypeError):
                pass  # an earlier edit replaced a container on this path
        build = root / "damaged"
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(root / base, build)
        (build / "schedule.json").write_text(json.dumps(data))
        if cut is not None:
            weights = sorted((build / "weights").iterdir())
            victim = weights[cut % len(weights)]
            victim.write_bytes(victim.read_bytes()[: cut % 7])
        outcomes = [harness.run_cli("simulate", build), harness.run_cli("report", build, "--json")]
        failure = harness.verdict(outcomes)
        assert failure is None, failure

    one_case()
