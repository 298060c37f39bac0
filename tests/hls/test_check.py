"""check_hls: every generated PL function compiles with g++ -Wall -Werror and matches the
simulator bit for bit on the example models; a wrong tensor or a broken kernel is reported."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.codegen.vitis import golden_inputs
from codesign.hls.check import check_hls
from codesign.ir.plan import GemmLayer, VectorLayer
from codesign.sim.functional import Simulator
from tests.hls.conftest import MODELS, needs_gxx

pytestmark = [pytest.mark.gxx, needs_gxx]


def tensors_of(build):
    return Simulator(build.plan).run_all(golden_inputs(build.plan))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_pl_function_matches_the_simulator(saved, name):
    root, build = saved(name)
    rows = check_hls(root, build.plan, tensors_of(build))
    bad = [r for r in rows if not (r.compiled and r.matched)]
    assert not bad, bad
    # one row per GEMM mover (4) and per PL unit (vector, data mover), plus the sequencer's
    gemms = sum(isinstance(layer, GemmLayer) for layer in build.plan.layers)
    units = sum(layer.unit == "pl" for layer in build.plan.layers)
    assert len(rows) == 1 + 4 * gemms + units
    assert {r.part for r in rows} >= {"pl:tile_a", "pl:feed_b", "pl:pack_b", "pl:untile_c"}


def test_a_wrong_output_tensor_is_a_mismatch_of_that_layer(saved):
    root, build = saved("qdq")
    tensors = tensors_of(build)
    vec = next(v for v in build.plan.layers if isinstance(v, VectorLayer) and v.fn == "dequantize")
    tensors[vec.outputs[0]] = tensors[vec.outputs[0]] + np.float32(1e-3)
    rows = {(r.layer, r.part): r for r in check_hls(root, build.plan, tensors)}
    assert not rows[(vec.name, "pl:vector:dequantize")].matched
    assert "first difference" in rows[(vec.name, "pl:vector:dequantize")].detail
    # the layer that wrote it and the one that reads it (its output, from the changed input,
    # differs from the simulator's), and the whole-inference run of the sequencer, nothing else
    consumer = next(v for v in build.plan.layers if vec.outputs[0] in v.inputs)
    assert {k[0] for k, r in rows.items() if not r.matched} == {
        vec.name,
        consumer.name,
        "(sequencer)",
    }
    assert f"tensor {vec.outputs[0]}" in rows[("(sequencer)", "pl:sequencer")].detail


@pytest.mark.parametrize(
    ("edit", "part"),
    [
        # the A tiler reads one column too far: every A stream differs
        ("col = (p * 8 + 0) * 8 + q", "pl:tile_a"),
        # the weight tiler walks the native blocks in the wrong order
        ("const int row = (p * 8 + l) * 8 + kb * 8 + r", "pl:pack_b"),
    ],
)
def test_a_wrong_mover_is_a_mismatch(saved, tmp_path, edit, part):
    import shutil

    root, build = saved("qdq")
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    gemm_index = next(
        i for i, layer in enumerate(build.plan.layers) if isinstance(layer, GemmLayer)
    )
    header = next((copy / "hls").glob(f"l{gemm_index}_*.h"))
    text = header.read_text()
    assert edit in text  # the generated line this test breaks (block 2x8: cascade 8, tile k 8)
    header.write_text(text.replace(edit, edit + " + 1"))
    rows = {(r.layer, r.part): r for r in check_hls(copy, build.plan, tensors_of(build))}
    gemm = build.plan.layers[gemm_index]
    assert rows[(gemm.name, part)].compiled
    assert not rows[(gemm.name, part)].matched


def test_a_kernel_that_does_not_compile_is_reported(saved, tmp_path):
    import shutil

    root, build = saved("qdq")
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    header = next((copy / "hls").glob("l0_*.h"))
    header.write_text(header.read_text() + "\nint unused_and_warned() { int x; return 0; }\n")
    rows = check_hls(copy, build.plan, tensors_of(build))
    assert rows and not any(r.matched for r in rows)
    assert not rows[0].compiled and "unused" in rows[0].detail


def test_a_build_without_pl_files(tmp_path, saved):
    _, build = saved("qdq")
    (row,) = check_hls(tmp_path, build.plan, {})
    assert not row.compiled and "no PL kernel" in row.detail


def test_a_pl_layer_without_pl_code_stops_the_kernel_compiling(saved, tmp_path):
    """A PL layer whose kind emits no hls/<layer>.h (here: the vector kind's files withheld)
    is an #error naming it in the sequencer, not a skipped step; views need nothing."""
    import shutil

    from codesign.hls import pl
    from codesign.hls.check import compile_cpp

    root, build = saved("qdq")
    path, text = pl.sequencer_file(build.plan)  # nothing emitted by the kinds
    vec = next(v for v in build.plan.layers if isinstance(v, VectorLayer))
    assert f'#error "layer {vec.name} (kind vector) has no PL code' in text.decode()
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    (copy / path).write_bytes(text)
    err = compile_cpp(copy / path, tmp_path / "k.o", copy / "hls", obj_only=True)
    assert err is not None and vec.name in err
    rows = check_hls(copy, build.plan, tensors_of(build))
    assert rows[0].layer == "(sequencer)" and not rows[0].compiled
    # the movers and units themselves still compile and match
    assert all(r.matched for r in rows[1:])


def test_the_sequencer_runs_a_whole_inference(saved, tmp_path):
    """The kernel runs once on x86 with the AIE replaced by the simulator's C tiles; a step
    taken out of it leaves that layer's tensor (and what follows) unlike the simulator's."""
    import shutil

    root, build = saved("kpass")
    rows = check_hls(root, build.plan, tensors_of(build))
    assert rows[0].part == "pl:sequencer" and rows[0].matched, rows[0]
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    kernel = copy / "hls" / "codesign_pl.cpp"
    i, vec = next(
        (i, v) for i, v in enumerate(build.plan.layers) if isinstance(v, VectorLayer) and i > 0
    )
    from codesign.hls.pl import ident

    call = f"  {ident(i, vec.name)}_run(arena);"
    text = kernel.read_text()
    assert call in text
    kernel.write_text(text.replace(call, "  // step removed by the test"))
    (row,) = [r for r in check_hls(copy, build.plan, tensors_of(build)) if r.part == "pl:sequencer"]
    assert row.compiled and not row.matched
    assert f"tensor {vec.outputs[0]}" in row.detail


def test_quantize_units_saturate_like_numerics(saved):
    """Inputs far outside the quantisation range: the PL quantize units clip exactly where
    codesign.sim.numerics does (both ends of int8 are hit), and everything downstream matches."""
    root, build = saved("qdq")
    x = {k: v * np.float32(1000) for k, v in golden_inputs(build.plan).items()}
    x = {k: np.where(np.arange(v.size).reshape(v.shape) % 2, v, -v) for k, v in x.items()}
    tensors = Simulator(build.plan).run_all(x)
    q = next(v for v in build.plan.layers if isinstance(v, VectorLayer) and v.fn == "quantize")
    assert {-128, 127} <= set(tensors[q.outputs[0]].reshape(-1).tolist())
    rows = check_hls(root, build.plan, tensors)
    assert all(r.matched for r in rows), [r for r in rows if not r.matched]


def test_layer_names_cannot_break_out_of_their_comments(tmp_path):
    """A node name is data: a newline in it would start a line of code in the generated C++,
    a trailing backslash would splice the next line into a comment."""
    import onnx

    import codesign
    from codesign.examples import models
    from codesign.hls.check import compile_cpp

    path = models.float_mlp(tmp_path / "m.onnx")
    m = onnx.load(path)
    for i, node in enumerate(m.graph.node):
        node.name = f'n{i}\n#error "injected"\\' if i % 2 else f"n{i} \\"
    onnx.save(m, path)
    root = codesign.compile(path, synth=False).save(tmp_path / "b")
    text = (root / "hls" / "codesign_pl.cpp").read_text()
    assert "injected" in text and '\n#error "injected"' not in text
    err = compile_cpp(root / "hls" / "codesign_pl.cpp", tmp_path / "k.o", root / "hls", True)
    assert err is None, err
    for f in [*root.rglob("*.cc"), *root.rglob("*.h"), *root.rglob("*.cpp")]:
        for line in f.read_text().splitlines():
            assert not line.rstrip().endswith("\\"), (f, line)
            assert not line.startswith('#error "injected"'), (f, line)


def test_a_view_slice_aliases_its_input_and_has_no_mover(tmp_path):
    """A Split along a leading axis gives views: the arena gives them the run of their input's
    bytes (at an offset that is no multiple of a beat here), no data mover is emitted, and the
    whole build still matches the simulator (the GEMMs read the views' bytes in place)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    import codesign
    from codesign.codegen.check import check_build
    from codesign.hls import pl
    from codesign.kinds.movement import view_offset

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((10, 12)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((12, 6)).astype(np.float32), "w2")
    split = numpy_helper.from_array(np.array([3, 5], np.int64), "split")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Split", ["h", "split"], ["a", "b"], name="split", axis=1),
        helper.make_node("MatMul", ["a", "w2"], ["ya"], name="fca"),
        helper.make_node("MatMul", ["b", "w2"], ["yb"], name="fcb"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10])],
        [
            helper.make_tensor_value_info("ya", TensorProto.FLOAT, [1, 3, 6]),
            helper.make_tensor_value_info("yb", TensorProto.FLOAT, [1, 5, 6]),
        ],
        [w1, w2, split],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "m.onnx")
    build = codesign.compile(tmp_path / "m.onnx", synth=False)
    plan = build.plan
    views = [(i, x) for i, x in enumerate(plan.layers) if view_offset(plan, x) is not None]
    assert len(views) == 2
    regions, _ = pl.arena(plan)
    h = regions[views[0][1].inputs[0]]
    b = regions[views[1][1].outputs[0]]
    assert b.offset == h.offset + 3 * 12 * 4 and b.offset % 64
    root = build.save(tmp_path / "b")
    for i, x in views:
        assert not (root / "hls" / f"{pl.ident(i, x.name)}.h").exists()
    rows = check_build(codesign.load_build(root))
    assert not [r for r in rows if r.failed], [r for r in rows if r.failed]
    assert any(r.part == "pl:sequencer" and r.matched for r in rows)
