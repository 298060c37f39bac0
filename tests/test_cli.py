"""The CLI: the main path, and bad input getting one line, exit code 2 and no build directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codesign.examples import models


@pytest.fixture
def qdq_model(tmp_path: Path) -> Path:
    return models.qdq_mlp(tmp_path / "mlp.onnx", per_channel=True)


def _one_error_line(r, *fragments: str) -> None:
    assert r.code == 2, (r.code, r.err)
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in r.err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_compile_simulate_report(cli, qdq_model: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    r = cli("compile", qdq_model, "--board", "vek280", "-o", build)
    assert r.code == 0, r.err
    schedule = json.loads((build / "schedule.json").read_text())
    assert schedule["schema"] == "codesign.schedule/1"
    assert any(layer["kind"] == "gemm" for layer in schedule["layers"])
    inputs = tmp_path / "in.npz"
    models.save_inputs(qdq_model, inputs)
    out = tmp_path / "out.npz"
    r = cli("simulate", build, "--inputs", inputs, "--output", out, "--reference")
    assert r.code == 0, r.err
    assert "pass" in r.out
    with np.load(out) as f:
        assert f["output"].shape == (4, 8)
    r = cli("report", build, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["modelled"] is True
    assert json.loads((build / "report" / "report.json").read_text()) == report
    assert (build / "report" / "report.html").read_text().count("<svg") >= 3
    gemm = next(e for e in report["layers"] if e["kind"] == "gemm")
    keys = {"M", "K", "N", "tile", "iterations", "k_passes", "cycles", "gops", "bound", "dataflow"}
    assert keys <= gemm.keys()
    assert gemm["gain_over_tempus"] >= 1.0
    cores = next(r for r in report["resources"] if r["resource"] == "AIE cores")
    assert (cores["used"], cores["available"]) == (16, 304)
    r = cli("report", build)
    assert r.code == 0 and "modelled" in r.out


def test_existing_build_needs_force(cli, qdq_model: Path, tmp_path: Path) -> None:
    build = tmp_path / "b"
    assert cli("compile", qdq_model, "-o", build).code == 0
    _one_error_line(cli("compile", qdq_model, "-o", build), "--force")
    assert cli("compile", qdq_model, "-o", build, "--force").code == 0


def test_fidelity_failure_exits_3(cli, qdq_model: Path, tmp_path: Path) -> None:
    build = tmp_path / "b"
    assert cli("compile", qdq_model, "-o", build).code == 0
    # corrupt the reference model the build kept: the simulation no longer matches it
    other = models.qdq_mlp(tmp_path / "other.onnx", per_channel=True, seed=7)
    (build / "model.onnx").write_bytes(other.read_bytes())
    r = cli("simulate", build, "--reference")
    assert r.code == 3
    assert "differ from onnxruntime" in r.err


@pytest.mark.parametrize(
    "make, args, fragments",
    [
        (lambda d: d / "missing.onnx", (), ("missing.onnx", "no such model file")),
        (
            lambda d: models.not_onnx_file(d / "notes.onnx"),
            (),
            ("notes.onnx", "not a readable ONNX model"),
        ),
        (
            lambda d: models.truncated_model(models.float_mlp(d / "f.onnx"), d / "cut.onnx"),
            (),
            ("cut.onnx", "ONNX"),
        ),
        (
            lambda d: models.unsupported_op_model(d / "u.onnx"),
            ("--strict",),
            (models.UNSUPPORTED_OP_TYPE, repr(models.UNSUPPORTED_NODE_NAME)),
        ),
        (
            lambda d: models.dynamic_dim_model(d / "dyn.onnx"),
            (),
            ("dynamic dimension", "--shape input="),
        ),
        (
            lambda d: models.float_mlp(d / "f.onnx"),
            ("--board", "vek999"),
            ("board must be one of", "vek999"),
        ),
        (
            lambda d: models.float_mlp(d / "f.onnx"),
            ("--block", "40x40"),
            ("--block 40x40", "1600 AIE tiles"),
        ),
        (
            lambda d: models.ffn_block(d / "ffn.onnx"),
            ("--board", "ve2302", "--block", "5x8"),
            ("needs 40 AIE tiles", "ve2302 has 34 (over by 6)"),
        ),
        (
            lambda d: models.float_mlp(d / "f.onnx"),
            ("--block", "2by8"),
            ("--block must be CHAINSxCASCADE",),
        ),
        (lambda d: models.float_mlp(d / "f.onnx"), ("--block", "0x8"), ("at least 1",)),
        (
            lambda d: models.float_mlp(d / "f.onnx"),
            ("--shape", "nope=1x2"),
            ("--shape names 'nope'",),
        ),
        (lambda d: models.float_mlp(d / "f.onnx"), ("--frobnicate",), ("--frobnicate",)),
    ],
    ids=[
        "missing",
        "not-onnx",
        "truncated",
        "unsupported-op",
        "dynamic-dim",
        "unknown-board",
        "block-too-big",
        "block-ve2302",
        "block-syntax",
        "block-zero",
        "shape-unknown-input",
        "bad-option",
    ],
)
def test_bad_input_one_line_exit_2_no_build(cli, tmp_path: Path, make, args, fragments) -> None:
    model = make(tmp_path)
    build = tmp_path / "out"
    r = cli("compile", model, "-o", build, *args)
    _one_error_line(r, *fragments)
    assert not build.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], (
        "temporary build left behind"
    )


def test_dynamic_dim_with_shape_compiles(cli, tmp_path: Path) -> None:
    model = models.dynamic_dim_model(tmp_path / "dyn.onnx")
    r = cli("compile", model, "-o", tmp_path / "b", "--shape", "input=3x16")
    assert r.code == 0, r.err


def test_simulate_bad_inputs(cli, qdq_model: Path, tmp_path: Path) -> None:
    build = tmp_path / "b"
    assert cli("compile", qdq_model, "-o", build).code == 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, wrong=np.zeros(3, dtype=np.float32))
    _one_error_line(cli("simulate", build, "--inputs", bad), "inputs must include input")
    np.savez(bad, input=np.zeros((2, 2), dtype=np.float32))
    _one_error_line(cli("simulate", build, "--inputs", bad), "input 'input' must have shape")
    _one_error_line(cli("simulate", tmp_path / "nobuild"), "not a codesign build")


def test_boards_command(cli) -> None:
    r = cli("boards")
    assert r.code == 0 and "vek280" in r.out and "ve2302" in r.out and "vck190" in r.out
    r = cli("boards", "vek280")
    assert r.code == 0 and "VE2802" in r.out and "DS957" in r.out and "null (unknown)" in r.out
    _one_error_line(cli("boards", "nope"), "board must be one of")


def test_real_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    """The installed console script maps errors to one line and exit code 2."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "codesign",
            "compile",
            str(tmp_path / "none.onnx"),
            "-o",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


@pytest.mark.yosys
def test_compile_writes_rtl_blocks_and_report_uses_their_synthesis(
    cli, qdq_model: Path, tmp_path: Path
) -> None:
    build = tmp_path / "b"
    assert cli("compile", qdq_model, "-o", build).code == 0
    manifest = json.loads((build / "rtl" / "manifest.json").read_text())
    blocks = {b["block"]: b for b in manifest["blocks"]}
    assert set(blocks) == {"requantizer", "broadcaster"}
    assert blocks["requantizer"]["params"]["out_dtype"] == "int8"
    assert blocks["broadcaster"]["params"]["outputs"] == 2  # one per chain of the 2x8 block
    for b in blocks.values():
        assert (build / "rtl" / b["file"]).read_text().startswith(("/*", "//", "module", "`"))
        assert b["synth"]["lut"] > 0 and "seconds" not in b["synth"]
    report = json.loads((build / "report" / "report.json").read_text())
    lut = next(r for r in report["resources"] if r["resource"] == "PL LUT")["used"]
    synth_lut = sum(b["synth"]["lut"] for b in blocks.values())
    assert lut > synth_lut  # the DMA movers plus the synthesised blocks
    assert any("yosys" in n and "proxy" in n for n in report["notes"])


@pytest.mark.iverilog
def test_verify_the_blocks_of_a_build(cli, qdq_model: Path, tmp_path: Path) -> None:
    build = tmp_path / "b"
    assert cli("compile", qdq_model, "-o", build, "--no-synth").code == 0
    r = cli("verify", "--build", build, "-n", "200")
    assert r.code == 0, r.err
    assert "requantizer" in r.out and "broadcaster" in r.out and "pass" in r.out


def test_simulate_reference_16bit_chain_uses_the_stated_tolerance(cli, tmp_path: Path) -> None:
    """README "Fidelity": onnxruntime evaluates QDQ graphs in float32, so on this two-layer
    int16 x uint16 per-channel MLP its outputs are 1 LSB off the exact value on a few percent of
    elements (the simulator is exact). Outputs downstream of an int16 GEMM pass at <= 1 LSB and
    >= 90 % equal, and the table says why; a systematic error still fails (below)."""
    from codesign import api
    from codesign.runtime.fidelity import MIN_EQUAL, MIN_EQUAL_16BIT, compare

    model = models.qdq_mlp(
        tmp_path / "m.onnx",
        (16, 32, 8),
        32,
        per_channel=True,
        activation_type="int16",
        weight_type="uint16",
    )
    build = tmp_path / "build"
    assert cli("compile", model, "-o", build).code == 0
    npz = tmp_path / "x.npz"
    np.savez(npz, **models.random_inputs(model, seed=1))
    r = cli("simulate", build, "--reference", "--inputs", npz)
    assert r.code == 0, r.out + r.err
    assert "onnxruntime rounds in float32" in r.out, r.out
    record = json.loads((build / "report" / "simulation.json").read_text())
    text = json.dumps(record)
    assert "int16: onnxruntime rounds in float32" in text, text
    (o,) = record["outputs"]
    # onnxruntime's float32 rounding: under the 99 % clause this exited 3 (measured 97.3 %)
    assert o["passed"] and o["max_lsb"] == 1 and MIN_EQUAL_16BIT <= o["equal_fraction"] < MIN_EQUAL

    # the clause itself, on exact copies of the simulated outputs: 5 % of the outputs 1 LSB
    # off passes; half of them 1 LSB off (a rounding-mode error) or one 2 LSB off fails
    from codesign.runtime.fidelity import _output_scale
    from codesign.sim.functional import Simulator

    b = api.load_build(build)
    sim = Simulator(b.plan, b.root)
    out = sim.run(models.random_inputs(model, seed=1))
    consts = {n: sim.data(f) for n, f in sim.plan.constants.items()}
    (name,) = out
    lsb = np.float32(_output_scale(sim.plan, name, consts))
    ref = {name: out[name]}
    flat = out[name].reshape(-1)

    def verdict(n_off: int, by: int) -> bool:
        moved = flat.copy()
        moved[:n_off] += by * lsb
        (res,) = compare(sim.plan, {name: moved.reshape(out[name].shape)}, ref, consts)
        assert res.kind == "quantized" and "int16" in res.criterion
        return res.passed

    assert MIN_EQUAL_16BIT < MIN_EQUAL
    assert verdict(int(0.05 * flat.size), 1)
    assert not verdict(flat.size // 2, 1)
    assert not verdict(1, 2)
