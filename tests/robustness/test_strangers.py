"""Builds and models from strangers (issue 11): every write stays inside the build, every read is
a regular file read once through one handle, --force replaces only builds that verify, names are
escaped and errors are one line, Ctrl-C and removed folders leave nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from codesign.examples import models


def one_error_line(r, code: int = 2) -> str:
    assert r.code == code, (r.code, r.out, r.err)
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    return lines[0]


@pytest.fixture
def build(cli, tmp_path: Path) -> Path:
    b = tmp_path / "b"
    assert cli("compile", models.qdq_mlp(tmp_path / "q.onnx"), "-o", b, "--no-synth").code == 0
    return b


def _relu_model(path: Path, name: str = "relu", out: str = "y", op: str = "Relu") -> Path:
    node = helper.make_node(op, ["x"], [out], name=name)
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 8])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# --- item 1: writes into a build never follow a symlink ------------------------------------------


def test_report_does_not_write_through_a_symlinked_file(cli, build: Path, tmp_path: Path) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("alias ll='ls -l'\n")
    target = build / "report" / "report.html"
    target.unlink()
    target.symlink_to(victim)
    line = one_error_line(cli("report", build))
    assert "symlink" in line and "report.html" in line
    assert victim.read_text() == "alias ll='ls -l'\n"


def test_report_does_not_write_through_a_symlinked_folder(cli, build: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    import shutil

    shutil.rmtree(build / "report")
    (build / "report").symlink_to(outside)
    line = one_error_line(cli("report", build))
    assert "symlink" in line
    assert list(outside.iterdir()) == []


def test_report_keeps_the_manifest_verifying(cli, build: Path, tmp_path: Path) -> None:
    """report rewrites two files of the build and records their hashes, so --force still
    recognises the build afterwards."""
    (build / "report" / "report.html").write_text("edited")
    assert cli("report", build, "--json").code == 0
    assert cli("compile", tmp_path / "q.onnx", "-o", build, "--no-synth", "--force").code == 0


# --- item 2: external data opened once, never through a symlink ----------------------------------


def _external_model(d: Path) -> Path:
    d.mkdir(exist_ok=True)
    w = np.arange(64, dtype=np.float32).reshape(8, 8) / 64
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 8])
    t.data_location = TensorProto.EXTERNAL
    for k, v in {"location": "w.bin", "offset": "0", "length": str(w.nbytes)}.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    (d / "w.bin").write_bytes(w.tobytes())
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[t],
    )
    p = d / "m.onnx"
    p.write_bytes(
        helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    )
    return p


def test_external_data_symlink_inside_the_folder_is_refused(cli, tmp_path: Path) -> None:
    """A symlink is refused even when it points inside the folder: what it points to can change
    between a check and a read."""
    model = _external_model(tmp_path / "m")
    (tmp_path / "m" / "w.bin").rename(tmp_path / "m" / "real.bin")
    (tmp_path / "m" / "w.bin").symlink_to("real.bin")
    line = one_error_line(cli("compile", model, "-o", tmp_path / "b", "--no-synth"))
    assert "'w.bin'" in line and "symlink" in line
    assert not (tmp_path / "b").exists()


def test_external_data_is_opened_once_per_file(cli, tmp_path: Path, monkeypatch) -> None:
    """The plan and the build's model.onnx come from one read of each external file."""
    from codesign.frontend import load

    model = _external_model(tmp_path / "m")
    opened: list[str] = []
    real = load._open_external

    def counting(base_fd, rel, location, where):
        opened.append(location)
        return real(base_fd, rel, location, where)

    monkeypatch.setattr(load, "_open_external", counting)
    assert cli("compile", model, "-o", tmp_path / "b", "--no-synth").code == 0
    assert opened == ["w.bin"]


def test_swapping_external_data_for_a_symlink_never_inlines_the_secret(tmp_path: Path) -> None:
    """A loop swaps w.bin between a benign file and a symlink to a secret while compiles run:
    every compile either refuses or inlines the benign bytes."""
    model = _external_model(tmp_path / "m")
    d = tmp_path / "m"
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"S" * 256)
    benign = (d / "w.bin").read_bytes()
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            (d / ".link").unlink(missing_ok=True)
            (d / ".link").symlink_to(secret)
            os.replace(d / ".link", d / "w.bin")
            (d / ".file").write_bytes(benign)
            os.replace(d / ".file", d / "w.bin")

    from codesign.codegen.build import CompileOptions, compile_model
    from codesign.errors import ModelError

    t = threading.Thread(target=swap, daemon=True)
    t.start()
    try:
        for i in range(12):
            out = tmp_path / f"b{i}"
            try:
                compile_model(model, out, CompileOptions(synth=False))
            except ModelError:
                continue
            assert b"S" * 64 not in (out / "model.onnx").read_bytes()
    finally:
        stop.set()
        t.join()


# --- item 3: --force replaces only a build whose manifest verifies -------------------------------


def test_force_names_the_unexpected_file(cli, build: Path, tmp_path: Path) -> None:
    (build / "thesis.tex").write_text("years of work")
    line = one_error_line(cli("compile", tmp_path / "q.onnx", "-o", build, "--no-synth", "--force"))
    assert "thesis.tex is not listed in manifest.json" in line
    assert (build / "thesis.tex").read_text() == "years of work"


def test_force_refuses_a_build_with_an_edited_file(cli, build: Path, tmp_path: Path) -> None:
    (build / "schedule.json").write_text("{}")
    line = one_error_line(cli("compile", tmp_path / "q.onnx", "-o", build, "--no-synth", "--force"))
    assert "schedule.json does not match its sha256" in line


# --- items 4, 14: reads are regular files of the expected size -----------------------------------


@pytest.mark.parametrize("victim", ["schedule.json", "model.onnx", "constant"])
def test_fifo_in_a_build_is_refused_without_hanging(cli, build: Path, victim: str) -> None:
    if victim == "constant":
        schedule = json.loads((build / "schedule.json").read_text())
        victim = next(iter(schedule["constants"].values()))["path"]
    (build / victim).unlink()
    os.mkfifo(build / victim)
    r = _run_with_timeout(["simulate", str(build), "--reference"])
    assert r.returncode == 2, r.stderr
    assert "FIFO" in r.stderr or "no schedule.json" in r.stderr, r.stderr


def test_fifo_inputs_are_refused_without_hanging(build: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "in.npz"
    os.mkfifo(fifo)
    r = _run_with_timeout(["simulate", str(build), "--inputs", str(fifo)])
    assert r.returncode == 2 and "FIFO" in r.stderr, r.stderr


def _run_with_timeout(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codesign", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("link", ["schedule.json", "weights"])
def test_symlinks_in_a_build_are_refused(cli, build: Path, tmp_path: Path, link: str) -> None:
    """schedule.json or a data file reached through a symlink is not read, even if it points
    at an identical copy."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(build / link, copy) if (build / link).is_dir() else shutil.copy(
        build / link, copy
    )
    if (build / link).is_dir():
        shutil.rmtree(build / link)
    else:
        (build / link).unlink()
    (build / link).symlink_to(copy)
    line = one_error_line(cli("simulate", build))
    assert "symlink" in line or "not a directory" in line


def test_data_file_of_the_wrong_size_is_refused_before_reading(cli, build: Path) -> None:
    schedule = json.loads((build / "schedule.json").read_text())
    f = next(iter(schedule["constants"].values()))["path"]
    with open(build / f, "ab") as h:
        h.write(b"\0" * 4096)
    line = one_error_line(cli("simulate", build))
    assert "must hold" in line and f in line


# --- item 5: npz members checked before they are decompressed ------------------------------------


def test_zip_bomb_inputs_are_refused_before_loading(cli, build: Path, tmp_path: Path) -> None:
    import zipfile

    from codesign.sim.functional import load_plan

    _, plan = load_plan(build)
    name = plan.inputs[0].name
    bomb = tmp_path / "bomb.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1 << 28,), np.float32))
    with (
        zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z,
        z.open(f"{name}.npy", "w", force_zip64=True) as m,
    ):
        np.lib.format.write_array_header_1_0(m, header)
        chunk = bytes(1 << 20)
        for _ in range(1024):  # 1 GiB of zeros, compressed to about 1 MB
            m.write(chunk)
    assert bomb.stat().st_size < 8 << 20
    line = one_error_line(cli("simulate", build, "--inputs", bomb))
    assert name in line and "more than" in line


def test_inputs_with_the_wrong_shape_are_refused_by_their_header(
    cli, build: Path, tmp_path: Path
) -> None:
    from codesign.sim.functional import load_plan

    _, plan = load_plan(build)
    t = plan.inputs[0]
    p = tmp_path / "in.npz"
    np.savez(p, **{t.name: np.zeros((2, *t.shape), np.float32)})
    line = one_error_line(cli("simulate", build, "--inputs", p))
    assert t.name in line and "must have shape" in line


# --- items 7, 8: exit 0 or 2 with one line; names escaped --------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a[/]b", "[bold]x[/bold]", "[link=file:///etc/passwd]x[/link]", "n\nerror: spoofed"],
)
def test_names_with_markup_and_newlines(cli, tmp_path: Path, name: str) -> None:
    model = _relu_model(tmp_path / "m.onnx", name=name, out=name)
    out = tmp_path / "o[/]ut"
    r = cli("compile", model, "-o", out, "--no-synth")
    assert r.code == 0, r.err
    assert "\nerror: spoofed" not in r.out
    r = cli("simulate", out)
    assert r.code == 0, r.err
    assert "\nerror: spoofed" not in r.out
    r = cli("report", out)
    assert r.code == 0, r.err


def test_op_type_with_a_newline_prints_one_line(cli, tmp_path: Path) -> None:
    model = _relu_model(tmp_path / "m.onnx", op="Foo\nerror: x")
    r = cli("compile", model, "-o", tmp_path / "b")
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1, r.err


def test_long_node_name_gives_short_weight_file_names(cli, tmp_path: Path) -> None:
    from codesign.ir.data import DataPacker

    w = DataPacker()  # the planner names the data files; the build writer stores them
    a = w.pack("n" * 300 + "a", np.zeros(4, np.float32), "float32")
    b = w.pack("n" * 300 + "b", np.zeros(4, np.float32), "float32")
    assert a.path != b.path
    assert all(len(Path(f.path).name) < 200 for f in (a, b))


def test_bad_rtl_manifest_read_only_build_and_report_file(cli, build: Path) -> None:
    (build / "rtl").mkdir(exist_ok=True)
    (build / "rtl" / "manifest.json").write_text('{"blocks": [1, 2]}')
    line = one_error_line(cli("report", build))
    assert "rtl/manifest.json" in line
    (build / "rtl" / "manifest.json").unlink()
    import shutil

    shutil.rmtree(build / "report")
    (build / "report").write_text("a file")
    line = one_error_line(cli("report", build))
    assert "report" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_build_is_a_user_error(cli, build: Path) -> None:
    os.chmod(build / "report", 0o555)
    try:
        one_error_line(cli("report", build))
    finally:
        os.chmod(build / "report", 0o755)


def test_bad_seed_and_missing_output_folder(cli, build: Path, tmp_path: Path) -> None:
    r = cli("simulate", build, "--seed", "-1")
    assert r.code == 2 and "--seed" in r.err
    line = one_error_line(cli("simulate", build, "--output", tmp_path / "no" / "o.npz"))
    assert "--output" in line


def test_external_location_too_long_or_looping(cli, tmp_path: Path) -> None:
    model = _external_model(tmp_path / "m")
    m = onnx.load(model, load_external_data=False)
    for e in m.graph.initializer[0].external_data:
        if e.key == "location":
            e.value = "x" * 300
    model.write_bytes(m.SerializeToString())
    one_error_line(cli("compile", model, "-o", tmp_path / "b"))
    for e in m.graph.initializer[0].external_data:
        if e.key == "location":
            e.value = "loop/w.bin"
    model.write_bytes(m.SerializeToString())
    (tmp_path / "m" / "loop").symlink_to("loop")
    one_error_line(cli("compile", model, "-o", tmp_path / "b"))


_UNDER_ULIMIT = """
import resource, sys
import codesign.cli, codesign.codegen.build, codesign.report.html, numpy, onnx, onnx_ir
import ortools.sat.python.cp_model
from codesign.cli import main
def vm():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
limit = vm() + 64 * 2**20  # like ulimit -v: 64 MiB more than the imports took
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
main(sys.argv[1:])
"""


def test_memory_error_under_ulimit_is_one_line(tmp_path: Path) -> None:
    """A real MemoryError (address-space limit below what a 64 MiB model needs)."""
    model = models.float_mlp(tmp_path / "big.onnx", dims=(2048, 4096, 2048), batch=1)
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _UNDER_ULIMIT,
            "compile",
            str(model),
            "-o",
            str(tmp_path / "b"),
            "--no-synth",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "out of memory" in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx"]


# --- items 9-12: interrupts, removed folders, created parents, --force recovery ------------------

_SIGINT_DURING_SOLVE = """
import os, signal, sys
from codesign.solvers import tiling
from codesign.cli import main
real = tiling.cp_model.CpSolver.solve
calls = []
def solve(self, *a, **k):
    result = real(self, *a, **k)
    calls.append(1)
    if len(calls) == 1:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after CP-SAT returns
    return result
tiling.cp_model.CpSolver.solve = solve
main(sys.argv[1:])
"""


def test_ctrl_c_after_a_solve_cleans_up(tmp_path: Path) -> None:
    model = models.qdq_mlp(tmp_path / "q.onnx")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGINT_DURING_SOLVE,
            "compile",
            str(model),
            "-o",
            str(tmp_path / "out"),
            "--no-synth",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]


_SIGINT_INSIDE_SOLVE = """
import os, signal, sys, threading
from codesign.solvers import tiling
from codesign.cli import main
cp_model = tiling.cp_model
real = cp_model.CpSolver.solve
def hard_model():
    m = cp_model.CpModel()
    xs = [m.new_int_var(0, 1000, f"x{i}") for i in range(60)]
    for i in range(59):
        m.add(xs[i] * 7 + xs[i + 1] * 13 != 500 + i)
    m.add_all_different(xs)
    m.maximize(sum(x * (i % 7 + 1) for i, x in enumerate(xs)))
    return m
def solve(self, model, *a, **k):
    # with the compile's own solver and settings, run a search that takes seconds and send
    # Ctrl-C while CP-SAT is inside it
    self.parameters.max_time_in_seconds = 3
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    real(self, hard_model())
    return real(self, model, *a, **k)
cp_model.CpSolver.solve = solve
main(sys.argv[1:])
"""


def test_ctrl_c_inside_a_solve_cleans_up(tmp_path: Path) -> None:
    """A real SIGINT while CP-SAT searches: exit 130, nothing left behind."""
    model = models.qdq_mlp(tmp_path / "q.onnx")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGINT_INSIDE_SOLVE,
            "compile",
            str(model),
            "-o",
            str(tmp_path / "out"),
            "--no-synth",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]


def test_removed_temporary_build_fails_the_compile(cli, tmp_path: Path, monkeypatch) -> None:
    """The temporary build vanishes mid-compile: the writers do not re-create it, and the
    compile fails with nothing left at -o."""
    import shutil

    from codesign.codegen import build as build_mod

    real = build_mod.write_rtl

    def remove_then_write(root, plan, synth):
        shutil.rmtree(root)
        return real(root, plan, synth)

    monkeypatch.setattr(build_mod, "write_rtl", remove_then_write)
    model = models.qdq_mlp(tmp_path / "q.onnx")
    one_error_line(cli("compile", model, "-o", tmp_path / "out", "--no-synth"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]


def test_failed_compile_removes_the_parents_it_created(cli, tmp_path: Path) -> None:
    bad = models.unsupported_op_model(tmp_path / "bad.onnx")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "keep").write_text("x")
    r = cli("compile", bad, "-o", tmp_path / "new" / "a" / "b" / "build", "--strict")
    assert r.code == 2
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["keep"]
    from codesign.codegen import build as build_mod
    from codesign.schedulers import planner

    def boom(*a, **k):
        raise KeyboardInterrupt

    import pytest as _p

    with _p.MonkeyPatch.context() as mp:
        mp.setattr(planner, "plan", boom)  # interrupted while planning (CP-SAT's solves)
        r = cli("compile", models.float_mlp(tmp_path / "f.onnx"), "-o", tmp_path / "x" / "y" / "b")
    assert r.code == 130
    assert not (tmp_path / "x").exists()
    with _p.MonkeyPatch.context() as mp:
        mp.setattr(build_mod, "write_rtl", boom)  # interrupted while writing, parents made
        r = cli("compile", tmp_path / "f.onnx", "-o", tmp_path / "x" / "y" / "b", "--no-synth")
    assert r.code == 130
    assert not (tmp_path / "x").exists()


def test_force_interrupted_between_renames_is_recovered(cli, build: Path, tmp_path: Path) -> None:
    """The old build parked as .b.old-<dead pid>-x with nothing at b: the next compile puts it
    back (and refuses to replace it without --force)."""
    before = {p.relative_to(build): p.read_bytes() for p in build.rglob("*") if p.is_file()}
    parked = tmp_path / ".b.old-999999999-x"
    os.replace(build, parked)
    r = cli("compile", tmp_path / "q.onnx", "-o", build, "--no-synth")
    assert r.code == 2 and "already exists" in r.err
    assert not parked.exists()
    after = {p.relative_to(build): p.read_bytes() for p in build.rglob("*") if p.is_file()}
    assert after == before


# --- item 13: nothing written outside the model, the build and codesign's documented cache ------


@pytest.mark.parametrize(
    "synth",
    [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.yosys])],
    ids=["no-synth", "synth"],
)
def test_compile_and_reference_write_nothing_outside(tmp_path: Path, synth: bool) -> None:
    """HOME, TMPDIR and XDG_CACHE_HOME stay empty: yosys's history and temp files, wasmtime's
    cache and onnxruntime's telemetry files go to codesign's cache or a removed temp dir."""
    import shutil

    if synth and shutil.which("yosys") is None:
        pytest.skip("needs yosys (apt-get install -y yosys)")
    dirs = {k: tmp_path / k for k in ("home", "tmp", "xdg", "cache", "work")}
    for d in dirs.values():
        d.mkdir()
    models.qdq_mlp(dirs["work"] / "m.onnx")
    env = {
        **os.environ,
        "HOME": str(dirs["home"]),
        "TMPDIR": str(dirs["tmp"]),
        "XDG_CACHE_HOME": str(dirs["xdg"]),
        "CODESIGN_CACHE_DIR": str(dirs["cache"]),
    }
    flags = [] if synth else ["--no-synth"]
    for args in (["compile", "m.onnx", "-o", "b", *flags], ["simulate", "b", "--reference"]):
        r = subprocess.run(
            [sys.executable, "-m", "codesign", *args],
            cwd=dirs["work"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert r.returncode == 0, r.stderr
    for k in ("home", "tmp", "xdg"):
        assert sorted(p.name for p in dirs[k].rglob("*")) == [], k
    assert (dirs["cache"] / "verilog").is_dir()


def test_cache_can_be_turned_off(tmp_path: Path) -> None:
    env = {**os.environ, "CODESIGN_CACHE_DIR": str(tmp_path / "cache"), "CODESIGN_NO_CACHE": "1"}
    model = models.qdq_mlp(tmp_path / "m.onnx")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "codesign",
            "compile",
            str(model),
            "-o",
            str(tmp_path / "b"),
            "--no-synth",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "cache").exists()


# --- item 7: models and builds that used to end in an internal error -----------------------------


def _save(path: Path, nodes, ins, outs, inits=()) -> Path:
    g = helper.make_graph(nodes, "g", ins, outs, initializer=list(inits))
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _vi(name: str, shape: list[int]):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.mark.parametrize("kind", ["identity", "reshape", "scalar"])
def test_graphs_without_compute_layers_compile_simulate_and_report(
    cli, tmp_path: Path, kind: str
) -> None:
    if kind == "identity":
        m = _save(
            tmp_path / "m.onnx",
            [helper.make_node("Identity", ["x"], ["y"])],
            [_vi("x", [1, 8])],
            [_vi("y", [1, 8])],
        )
    elif kind == "reshape":
        m = _save(
            tmp_path / "m.onnx",
            [helper.make_node("Reshape", ["x", "s"], ["y"])],
            [_vi("x", [1, 8])],
            [_vi("y", [8])],
            [helper.make_tensor("s", TensorProto.INT64, [1], [8])],
        )
    else:  # a scalar output, compared with --reference
        m = _save(
            tmp_path / "m.onnx",
            [helper.make_node("Relu", ["x"], ["y"])],
            [_vi("x", [])],
            [_vi("y", [])],
        )
    b = tmp_path / "b"
    for args in (
        ["compile", m, "-o", b, "--no-synth"],
        ["simulate", b, "--reference"],
        ["report", b],
    ):
        r = cli(*args)
        assert r.code == 0, (args, r.err)


def test_rank_beyond_numpy_is_refused(cli, tmp_path: Path) -> None:
    m = _save(
        tmp_path / "m.onnx",
        [helper.make_node("Relu", ["x"], ["y"])],
        [_vi("x", [1] * 33)],
        [_vi("y", [1] * 33)],
    )
    line = one_error_line(cli("compile", m, "-o", tmp_path / "b"))
    assert "rank at most 32" in line


def test_out_of_range_shift_with_an_updated_hash_is_refused(cli, build: Path) -> None:
    import hashlib

    s = json.loads((build / "schedule.json").read_text())
    f = next(layer["requant"]["shift"] for layer in s["layers"] if layer.get("requant"))
    p = build / f["path"]
    a = np.fromfile(p, dtype=f["dtype"])
    a[:] = 99
    a.tofile(p)
    f["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (build / "schedule.json").write_text(json.dumps(s))
    line = one_error_line(cli("simulate", build))
    assert "shift" in line and "0..62" in line
