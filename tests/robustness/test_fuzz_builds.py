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


#: What a stranger's build may hold in place of one of its files or folders.
SPECIALS = (
    "symlink-out",  # a symlink to a file outside the build (a "secret" the test watches)
    "symlink-copy",  # a symlink to an identical copy outside the build
    "symlink-dangling",
    "symlink-loop",
    "fifo",
    "socket",
    "directory",  # a folder where a file was
    "file",  # a file where a folder was
)


def _special(victim: Path, kind: str, outside: Path) -> None:
    import socket

    copy = outside / f"copy-{victim.name}"
    if victim.is_dir():
        shutil.copytree(victim, copy, dirs_exist_ok=True)
        shutil.rmtree(victim)
    else:
        shutil.copyfile(victim, copy)
        victim.unlink()
    if kind == "symlink-out":
        victim.symlink_to(outside / ("secret-dir" if copy.is_dir() else "secret"))
    elif kind == "symlink-copy":
        victim.symlink_to(copy)
    elif kind == "symlink-dangling":
        victim.symlink_to(outside / "nothing-here")
    elif kind == "symlink-loop":
        victim.symlink_to(victim.name)
    elif kind == "fifo":
        os.mkfifo(victim)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind(str(victim))
        except OSError:  # a path too long for a socket address: a FIFO instead
            os.mkfifo(victim)
        finally:
            s.close()
    elif kind == "directory":
        victim.mkdir()
    else:
        victim.write_text("not a folder")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def test_builds_with_symlinks_fifos_and_special_files(
    builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any file or folder of a build replaced by a symlink (out, to a copy, dangling, looping),
    a FIFO, a socket, a folder or a file: simulate (also with --reference), report and
    compile --force end with exit 0 or one error line, never hang, and never write outside the
    build; --force refuses to replace such a build."""
    import signal

    root, bases = builds
    monkeypatch.setattr(memory, "available", lambda: (512 * 2**20, "the fuzz test's limit"))
    outside = tmp_path / "outside"
    (outside / "secret-dir").mkdir(parents=True)
    (outside / "secret").write_text("secret")
    (outside / "secret-dir" / "report.html").write_text("secret")
    entries = {
        name: sorted(p.relative_to(root / name).as_posix() for p in (root / name).rglob("*"))
        for name in bases
    }

    def hang(signum, frame):
        raise TimeoutError("codesign blocked (a FIFO read?)")

    previous = signal.signal(signal.SIGALRM, hang)

    @settings(
        max_examples=max(40, EXAMPLES // 3),
        deadline=None,
        derandomize="CODESIGN_FUZZ_EXAMPLES" not in os.environ,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        base=st.sampled_from(sorted(bases)),
        pick=st.integers(0, 10**6),
        kind=st.sampled_from(SPECIALS),
    )
    def one_case(base: str, pick: int, kind: str) -> None:
        build = root / "special"
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(root / base, build)
        for p in outside.iterdir():
            if p.name.startswith("copy-"):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        rel = entries[base][pick % len(entries[base])]
        if kind == "file" and not (build / rel).is_dir():
            kind = "directory"
        _special(build / rel, kind, outside)
        before = _snapshot(outside)
        signal.alarm(60)
        try:
            outcomes = [
                harness.run_cli("simulate", build),
                harness.run_cli("simulate", build, "--reference"),
                harness.run_cli("report", build, "--json"),
            ]
            again = harness.run_cli(
                "compile", root / f"{base}.onnx", "-o", build, "--no-synth", "--force"
            )
        finally:
            signal.alarm(0)
        failure = harness.verdict([*outcomes, again])
        assert failure is None, (rel, kind, failure)
        assert again.code == 2 and "is not a codesign build" in again.err, (rel, kind, again)
        assert _snapshot(outside) == before, (rel, kind)

    try:
        one_case()
    finally:
        signal.signal(signal.SIGALRM, previous)
