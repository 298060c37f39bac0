"""A model with a Host partition between two GEMMs: the build runs it as launches of the PL
kernel (one per segment) with the partition run by onnxruntime on the arena between them.

``codesign check`` runs the sequencer launch after launch with the partition run between them,
and counts each launch's control records against the graph iterations the host program runs;
the partition runner (host/partitions.h, onnxruntime's C API) is compiled and run against the
simulator when onnxruntime's C header is found (ONNXRUNTIME_DIR), and skipped otherwise."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.codegen.check import check_build
from codesign.codegen.vitis import golden_inputs
from codesign.hls import host_check, pl
from codesign.sim.functional import Simulator
from tests.hls.conftest import needs_gxx

pytestmark = [pytest.mark.gxx, needs_gxx]
STUB = Path(__file__).parent / "xrt_stub"
needs_ort_header = pytest.mark.skipif(
    host_check.onnxruntime_include() is None,
    reason="needs onnxruntime_c_api.h (set ONNXRUNTIME_DIR): onnxruntime's wheel has no header",
)


def _model(path: Path) -> Path:
    """x[4, 24] -> MatMul -> Sin (no lowering: the Host) -> MatMul -> y[4, 16]."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array((rng.standard_normal((24, 40)) / 4).astype(np.float32), "w1")
    w2 = numpy_helper.from_array((rng.standard_normal((40, 16)) / 4).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Sin", ["h"], ["s"], name="sin"),
        helper.make_node("MatMul", ["s", "w2"], ["y"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, codesign.Build]:
    tmp = tmp_path_factory.mktemp("host-partition")
    root = codesign.compile(_model(tmp / "m.onnx"), synth=False).save(tmp / "b")
    return root, codesign.load_build(root)


def test_the_inference_is_two_launches_around_the_partition(build) -> None:
    root, b = build
    kinds = [layer.kind for layer in b.plan.layers]
    host = kinds.index("host")
    stages = pl.stages(b.plan)
    assert [st.segment for st in stages] == [0, -1, 1]
    assert stages[1].layers == (host,)
    # each launch runs the graph for its GEMM's iterations (every (M, N) tile and K pass)
    for st in (stages[0], stages[2]):
        (g,) = [b.plan.layers[i] for i in st.layers if b.plan.layers[i].kind == "gemm"]
        assert st.iterations == g.schedule.graph_iterations * g.schedule.k_passes > 0
    seq = (root / "hls" / "codesign_pl.cpp").read_text()
    assert "#error" not in seq
    assert re.search(r"case 0:.*fc1.*break;.*Host partition.*case 1:.*fc2.*break;", seq, re.S)
    host_cpp = (root / "host" / "host.cpp").read_text()
    table = re.findall(r"^    \{(-?\d+), (\d+), (-?\d+)\},", host_cpp, re.M)
    assert table == [
        ("0", str(stages[0].iterations), "-1"),
        ("-1", "0", "0"),
        ("1", str(stages[2].iterations), "-1"),
    ]
    assert '#include "partitions.h"' in host_cpp
    runner = (root / "host" / "partitions.h").read_text()
    assert f'"{b.plan.layers[host].model.path}"' in runner
    makefile = (root / "Makefile").read_text()
    assert "-lonnxruntime" in makefile and "host/partitions.h" in makefile
    readme = (root / "README.md").read_text()
    assert "2 launches" in readme and "ONNXRUNTIME_DIR" in readme


def test_codesign_check_runs_the_launches_and_the_partition_between(build) -> None:
    _, b = build
    rows = check_build(b)
    assert not [r for r in rows if r.failed], [r for r in rows if r.failed]
    (seq,) = [r for r in rows if r.part == "pl:sequencer"]
    assert seq.compiled and seq.matched
    (host,) = [r for r in rows if r.part == "host:onnxruntime"]
    if host_check.onnxruntime_include() is None:
        assert host.skipped and "ONNXRUNTIME_DIR" in host.detail
    else:
        assert host.compiled and host.matched and not host.skipped


def test_a_launch_whose_records_differ_from_the_host_programs_iterations_fails(
    build, monkeypatch
) -> None:
    """The host program runs the graph for each segment's iterations; a count that differs
    from the control records the launch sends would stall or starve the graph on the board."""
    _, b = build
    real = pl.stages

    def off_by_one(plan):
        return [
            dataclasses.replace(st, iterations=st.iterations + 1) if st.segment == 1 else st
            for st in real(plan)
        ]

    monkeypatch.setattr(pl, "stages", off_by_one)
    rows = check_build(b)
    (seq,) = [r for r in rows if r.part == "pl:sequencer"]
    assert seq.compiled and not seq.matched
    assert "segment 1" in seq.detail and "control records" in seq.detail


def test_without_the_header_the_partition_runner_is_skipped(build, monkeypatch) -> None:
    root, b = build
    monkeypatch.setattr(host_check, "onnxruntime_include", lambda: None)
    (row,) = host_check.check_host(root, b.plan, {})
    assert row.skipped and not row.failed and "onnxruntime_c_api.h" in row.detail


@needs_ort_header
def test_the_host_program_is_valid_cpp(build) -> None:
    """Syntax and types: g++ -fsyntax-only against the XRT stand-in (tests/hls/xrt_stub) and
    onnxruntime's real C API header."""
    root, _ = build
    r = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(STUB)]
        + ["-I", str(host_check.onnxruntime_include()), str(root / "host" / "host.cpp")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr


@needs_ort_header
def test_a_partition_runner_writing_the_wrong_region_is_a_mismatch(build, tmp_path) -> None:
    root, b = build
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    host = next(layer for layer in b.plan.layers if layer.kind == "host")
    regions, _ = pl.arena(b.plan)
    out = regions[host.outputs[0]]
    path = copy / "host" / "partitions.h"
    text = path.read_text()
    entry = f'{{"{host.outputs[0]}", {out.offset}, '
    assert entry in text
    path.write_text(text.replace(entry, f'{{"{host.outputs[0]}", {out.offset + 64}, '))
    tensors = Simulator(b.plan, root).run_all(golden_inputs(b.plan))
    (row,) = host_check.check_host(copy, b.plan, tensors)
    assert row.compiled and not row.matched and "first difference" in row.detail
    (row,) = host_check.check_host(root, b.plan, tensors)
    assert row.compiled and row.matched


def test_the_cost_model_pays_one_launch_per_segment(build) -> None:
    """The plan's execution record counts the launches the host program makes."""
    _, b = build
    launches = sum(st.segment >= 0 for st in pl.stages(b.plan))
    assert b.plan.execution.launches == launches == 2


def test_the_report_says_how_many_graph_runs(build) -> None:
    _, b = build
    notes = " ".join(b.report()["notes"])
    assert "2 graph runs per inference" in notes
