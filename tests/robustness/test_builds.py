"""Builds: deterministic bytes recorded in manifest.json, atomic writes that leave nothing behind
when interrupted, stale temporaries cleaned up, and --force that replaces only builds."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codesign.codegen import build as build_mod
from codesign.examples import models

MODELS = {
    "qdq_per_channel": lambda p: models.qdq_mlp(p, per_channel=True),
    "float_gemm": lambda p: models.float_mlp(p, use_gemm=True),
    "ffn": lambda p: models.ffn_block(p, d_model=32, d_ff=64, seq=8),
    "dynamic": lambda p: models.dynamic_mlp(p, reduce_range=True),
}


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def run_codesign(*args: object, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "codesign", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_two_compiles_are_byte_identical(cli, tmp_path: Path, name: str) -> None:
    model = MODELS[name](tmp_path / "model.onnx")
    assert cli("compile", model, "-o", tmp_path / "a").code == 0
    assert cli("compile", model, "-o", tmp_path / "deeper" / "b").code == 0
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "deeper" / "b")
    assert sorted(a) == sorted(b)
    assert a == b
    for path, data in a.items():  # no absolute path of the build or the model in any file
        assert str(tmp_path).encode() not in data, path


def test_determinism_across_processes_and_paths(cli, tmp_path: Path) -> None:
    """Another process (other hash seed), a relative model path and another working directory."""
    model = models.qdq_mlp(tmp_path / "model.onnx", per_channel=True)
    assert cli("compile", model, "-o", tmp_path / "a").code == 0
    (tmp_path / "elsewhere").mkdir()
    r = run_codesign(
        "compile",
        "../model.onnx",
        "-o",
        "b",
        cwd=tmp_path / "elsewhere",
        env={"PYTHONHASHSEED": "12345"},
    )
    assert r.returncode == 0, r.stderr
    assert files_of(tmp_path / "a") == files_of(tmp_path / "elsewhere" / "b")


def test_manifest_records_hashes_options_and_tools(cli, tmp_path: Path) -> None:
    model = models.dynamic_dim_model(tmp_path / "dyn.onnx")
    build = tmp_path / "b"
    r = cli(
        "compile", model, "-o", build, "--shape", "input=3x16", "--block", "2x4",
        "--solver-time-limit", "5",
    )  # fmt: skip
    assert r.code == 0, r.err
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["schema"] == "codesign.manifest/1"
    assert set(manifest["tools"]) >= {"numpy", "onnx", "onnx_ir", "ortools", "python"}
    assert manifest["model"] == {
        "name": "dyn.onnx",
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
    }
    assert manifest["options"] == {
        "board": "vek280",
        "block": "2x4",
        "shapes": {"input": [3, 16]},
        "solver_time_limit": 5.0,
        "synth": True,
    }
    files = files_of(build)
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    for path, digest in manifest["files"].items():
        assert hashlib.sha256(files[path]).hexdigest() == digest


@pytest.mark.parametrize(
    "exc, code",
    [(KeyboardInterrupt, 130), (RuntimeError("a bug"), 1), (OSError(28, "No space"), 2)],
)
def test_failure_while_writing_leaves_nothing(cli, tmp_path, monkeypatch, exc, code) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(build_mod, "_write_manifest", fail)
    r = cli("compile", model, "-o", tmp_path / "out")
    assert r.code == code, r.err
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path, "out") == []


def test_failure_while_replacing_keeps_the_old_build(cli, tmp_path, monkeypatch) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")
    out = tmp_path / "out"
    assert cli("compile", model, "-o", out).code == 0
    before = files_of(out)
    monkeypatch.setattr(build_mod, "_write_manifest", lambda *a: (_ for _ in ()).throw(OSError()))
    assert cli("compile", model, "-o", out, "--force").code == 2
    assert files_of(out) == before
    assert leftovers(tmp_path, "out") == []


_INTERRUPTED = """
import os, signal, sys
from codesign.codegen import build
def stop(*args):
    os.kill(os.getpid(), signal.{sig})
    raise SystemExit("the signal did not stop the compile")
build._write_manifest = stop
from codesign.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_terminated_compile_leaves_nothing(tmp_path: Path, sig: str) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")
    script = textwrap.dedent(_INTERRUPTED.format(sig=sig))
    r = subprocess.run(
        [sys.executable, "-c", script, "compile", str(model), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 130, r.stderr
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path, "out") == []


def test_killed_compile_is_cleaned_up_by_the_next(cli, tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the temporary stays until the next compile to that build."""
    model = models.float_mlp(tmp_path / "f.onnx")
    script = textwrap.dedent(_INTERRUPTED.format(sig="SIGKILL"))
    r = subprocess.run(
        [sys.executable, "-c", script, "compile", str(model), "-o", str(tmp_path / "out")],
        capture_output=True,
        check=False,
    )
    assert r.returncode == -signal.SIGKILL
    stale = leftovers(tmp_path, "out")
    assert len(stale) == 1 and ".out.tmp-" in stale[0]
    mine = tmp_path / f".out.tmp-{os.getpid()}-live"  # a compile of this (live) process
    mine.mkdir()
    other = tmp_path / ".other.tmp-1-x"  # another build's temporary is not ours to remove
    other.mkdir()
    assert cli("compile", model, "-o", tmp_path / "out").code == 0
    assert leftovers(tmp_path, "out") == [mine.name]
    assert other.exists()


def test_force_replaces_a_build_completely(cli, tmp_path: Path) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")
    out = tmp_path / "out"
    assert cli("compile", model, "-o", out).code == 0
    old = set(files_of(out))
    assert cli("compile", models.qdq_mlp(tmp_path / "q.onnx"), "-o", out, "--force").code == 0
    new = json.loads((out / "manifest.json").read_text())["files"]
    assert set(files_of(out)) == {*new, "manifest.json"}  # nothing of the old build is left
    assert cli("compile", tmp_path / "q.onnx", "-o", tmp_path / "fresh").code == 0
    assert files_of(out) == files_of(tmp_path / "fresh") and old != set(new)
    assert json.loads((out / "manifest.json").read_text())["model"]["name"] == "q.onnx"
    assert leftovers(tmp_path, "out") == []


def test_force_refuses_what_is_not_a_build(cli, tmp_path: Path) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    r = cli("compile", model, "-o", precious, "--force")
    assert r.code == 2 and "is not a codesign build" in r.err
    assert (precious / "thesis.tex").read_text() == "years of work"
    # a schedule.json, or a manifest with the schema string, does not make a folder a build
    (precious / "schedule.json").write_text("{}")
    r = cli("compile", model, "-o", precious, "--force")
    assert r.code == 2 and "is not a codesign build" in r.err
    (precious / "manifest.json").write_text('{"schema": "codesign.manifest/1", "files": {}}')
    r = cli("compile", model, "-o", precious, "--force")
    assert r.code == 2 and "schedule.json is not listed in manifest.json" in r.err
    assert (precious / "thesis.tex").read_text() == "years of work"
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = cli("compile", model, "-o", afile, "--force")
    assert r.code == 2 and "must be a build directory, not a file" in r.err
    assert afile.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("compile", model, "-o", empty, "--force").code == 0


def test_force_replaces_a_symlink_without_following_it(cli, tmp_path: Path) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")
    target = tmp_path / "real"
    assert cli("compile", model, "-o", target).code == 0
    before = files_of(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert cli("compile", model, "-o", link).code == 2
    assert cli("compile", models.qdq_mlp(tmp_path / "q.onnx"), "-o", link, "--force").code == 0
    assert not link.is_symlink() and (link / "schedule.json").is_file()
    assert files_of(target) == before


def test_unwritable_output_is_a_user_error(cli, tmp_path: Path) -> None:
    model = models.float_mlp(tmp_path / "f.onnx")
    (tmp_path / "afile").write_text("x")
    r = cli("compile", model, "-o", tmp_path / "afile" / "build")
    assert r.code == 2 and "cannot create the build directory" in r.err


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (
            lambda s: s["constants"].__setitem__(
                next(iter(s["constants"])),
                {**next(iter(s["constants"].values())), "path": "../../etc/passwd"},
            ),
            ("path must be a relative path inside the build, not '../../etc/passwd'",),
        ),
        (
            lambda s: s["layers"][1]["schedule"]["block"].__setitem__("chains", "two"),
            ('schedule.layers[1].schedule.block.chains must be an integer, not "two"',),
        ),
        (
            lambda s: s["layers"][1]["schedule"].__setitem__("m_tiles", 99),
            ("layer 1 'fc0_matmul' (gemm)", "tile counts and padding must follow"),
        ),
        (
            lambda s: s["layers"][0].__setitem__("inputs", ["nowhere", "", ""]),
            ("layer 0", "input 'nowhere' must be defined before the layer"),
        ),
    ],
    ids=["path-traversal", "wrong-type", "inconsistent-schedule", "undefined-input"],
)
def test_damaged_schedule_is_refused(cli, tmp_path: Path, edit, fragments) -> None:
    """Builds travel too: simulate and report refuse a damaged schedule.json with one line."""
    build = tmp_path / "b"
    assert cli("compile", models.qdq_mlp(tmp_path / "q.onnx"), "-o", build, "--no-synth").code == 0
    schedule = json.loads((build / "schedule.json").read_text())
    edit(schedule)
    (build / "schedule.json").write_text(json.dumps(schedule))
    for command in ("simulate", "report"):
        r = cli(command, build)
        lines = [line for line in r.err.splitlines() if line.strip()]
        assert r.code == 2 and len(lines) == 1, r.err
        for f in fragments:
            assert f in lines[0], (f, lines[0])
