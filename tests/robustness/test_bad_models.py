"""Every class of bad model gets one error line naming the file, node or tensor, exit code 2,
and no build directory (nor a temporary one) left behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from codesign.examples import models

Edit = Callable[[onnx.ModelProto], None]


def edited(src: Path, dst: Path, edit: Edit) -> Path:
    """Write ``src`` changed by ``edit`` to ``dst`` (no checks: the point is a bad model)."""
    m = onnx.load(src)
    edit(m)
    dst.write_bytes(m.SerializeToString())
    return dst


def init(m: onnx.ModelProto, name: str) -> TensorProto:
    return next(t for t in m.graph.initializer if t.name == name)


def node(m: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in m.graph.node if n.name == name)


def set_init(m: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    init(m, name).CopyFrom(numpy_helper.from_array(value, name))


def set_values(m: onnx.ModelProto, name: str, fn: Callable[[np.ndarray], None]) -> None:
    a = numpy_helper.to_array(init(m, name)).copy()
    fn(a)
    set_init(m, name, a)


def assert_refused(r, build: Path, *fragments: str) -> None:
    assert r.code == 2, (r.code, r.err)
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert not build.exists()
    assert not [p for p in build.parent.iterdir() if p.name.startswith(f".{build.name}.")]


def float_mlp(d: Path) -> Path:
    return models.float_mlp(d / "f.onnx", dims=(8, 16, 4), batch=2)


def qdq_gemm(d: Path) -> Path:
    return models.qdq_gemm(d / "g.onnx", 3, 8, 4)


def qdq_gemm_pc(d: Path) -> Path:
    return models.qdq_gemm(d / "g.onnx", 3, 8, 4, per_channel=True)


def qlinear(d: Path) -> Path:
    return models.qlinear_matmul(d / "q.onnx", 2, 8, 4)


def _cycle(m: onnx.ModelProto) -> None:
    node(m, "fc0_matmul").input[0] = "fc0_relu"


def _reverse(m: onnx.ModelProto) -> None:
    nodes = list(m.graph.node)[::-1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)


def _utf8(m: onnx.ModelProto) -> None:
    pass  # applied on the bytes, see test_invalid_utf8_name


# id -> (base model, edit, extra compile options, fragments of the one error line)
CASES: dict[str, tuple[Callable[[Path], Path], Edit | None, tuple[str, ...], tuple[str, ...]]] = {
    "size-limit": (float_mlp, None, ("--max-model-size", "1K"), ("must be at most 1024 bytes",)),
    "missing-initializer": (
        float_mlp,
        lambda m: m.graph.initializer.remove(init(m, "fc0.weight")),
        (),
        ("node 'fc0_matmul' (MatMul) input 'fc0.weight' is not defined",),
    ),
    "output-not-produced": (
        float_mlp,
        lambda m: setattr(m.graph.output[0], "name", "nowhere"),
        (),
        ("graph output 'nowhere' is not produced by any node",),
    ),
    "defined-twice": (
        float_mlp,
        lambda m: node(m, "fc1_matmul").output.__setitem__(0, "fc0_mm"),
        (),
        ("node 'fc1_matmul' (MatMul) output 'fc0_mm' is already defined by node 'fc0_matmul'",),
    ),
    "cycle": (
        float_mlp,
        _cycle,
        (),
        (
            "must be acyclic",
            "node 'fc0_matmul' (MatMul) -> node 'fc0_bias_add' (Add) -> node 'fc0_relu' (Relu)",
        ),
    ),
    "initializer-size": (
        float_mlp,
        lambda m: init(m, "fc0.weight").dims.__setitem__(1, 15),
        (),
        ("initializer 'fc0.weight' holds 512 bytes", "shape [8, 15] of FLOAT needs 480"),
    ),
    "initializer-type": (
        float_mlp,
        lambda m: setattr(init(m, "fc0.bias"), "data_type", 99),
        (),
        ("initializer 'fc0.bias' has an unknown element type (type 99)",),
    ),
    "input-dtype-mismatch": (
        float_mlp,
        lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type", TensorProto.INT32),
        (),
        ("fc0_matmul",),
    ),
    "matmul-shape-mismatch": (
        float_mlp,
        lambda m: set_init(m, "fc1.weight", np.ones((15, 4), np.float32)),
        (),
        ("shape inference failed", "fc1_matmul"),
    ),
    "gemm-bias-not-broadcastable": (
        lambda d: models.float_mlp(d / "f.onnx", dims=(8, 16, 4), batch=2, use_gemm=True),
        lambda m: set_init(m, "fc1.bias", np.ones(3, np.float32)),
        (),
        ("node 'fc1_gemm' (Gemm)", "must broadcast to the output shape (2, 4)"),
    ),
    "nan-weight": (
        float_mlp,
        lambda m: set_values(m, "fc0.weight", lambda a: a.__setitem__((1, 2), np.nan)),
        (),
        ("initializer 'fc0.weight'", "must hold finite numbers, not nan at index [1, 2]"),
    ),
    "inf-bias": (
        float_mlp,
        lambda m: set_values(m, "fc1.bias", lambda a: a.__setitem__(3, -np.inf)),
        (),
        ("initializer 'fc1.bias'", "not -inf at index [3]"),
    ),
    "weight-beyond-bf16": (
        float_mlp,
        lambda m: set_values(m, "fc0.weight", lambda a: a.__setitem__((0, 0), 3.4e38)),
        (),
        ("node 'fc0_matmul'", "must fit bf16"),
    ),
    "nan-scale": (
        qdq_gemm,
        lambda m: set_init(m, "input_scale", np.array(np.nan, np.float32)),
        (),
        ("node 'input_quantize'", "scale 'input_scale' must be finite and positive, not [nan]"),
    ),
    "inf-scale": (
        qdq_gemm,
        lambda m: set_init(m, "output_scale", np.array(np.inf, np.float32)),
        (),
        ("scale 'output_scale' must be finite and positive, not [inf]",),
    ),
    "zero-scale": (
        qdq_gemm,
        lambda m: set_init(m, "output_scale", np.array(0, np.float32)),
        (),
        ("node 'output_quantize'", "scale 'output_scale' must be finite and positive, not [0.0]"),
    ),
    "negative-scale": (
        qdq_gemm_pc,
        lambda m: set_values(m, "weight_scale", lambda a: a.__setitem__(2, -0.5)),
        (),
        ("node 'weight_dequantize'", "scale 'weight_scale' must be finite and positive"),
    ),
    "scale-length": (
        qdq_gemm_pc,
        lambda m: node(m, "weight_dequantize").attribute[0].__setattr__("i", 0),
        (),
        ("node 'weight_dequantize'", "per-axis scale 'weight_scale' must have 8 elements"),
    ),
    "zero-point-shape": (
        qdq_gemm,
        lambda m: set_init(m, "weight_zero_point", np.zeros(4, np.int8)),
        (),
        ("node 'weight_dequantize'", "zero point 'weight_zero_point' must have the scale's shape"),
    ),
    "zero-point-out-of-range": (
        qlinear,
        lambda m: (
            init(m, "output_zero_point").int32_data.__setitem__(0, 300)
            if init(m, "output_zero_point").int32_data
            else _int32_zero_point(m, "output_zero_point", 300)
        ),
        (),
        ("initializer 'output_zero_point' values must lie in 0..255 (UINT8), not 300",),
    ),
    "zero-point-dtype": (
        qlinear,
        lambda m: set_init(m, "output_zero_point", np.array(3, np.int8)),
        (),
        ("qlinear_matmul",),
    ),
    "input-dim-zero": (
        float_mlp,
        lambda m: m.graph.input[0].type.tensor_type.shape.dim[0].__setattr__("dim_value", 0),
        (),
        ("tensor 'input' dimension 0 must lie in 1..2147483647, not 0",),
    ),
    "input-dim-negative": (
        float_mlp,
        lambda m: m.graph.input[0].type.tensor_type.shape.dim[1].__setattr__("dim_value", -3),
        (),
        ("tensor 'input' dimension 1 must lie in 1..2147483647, not -3",),
    ),
    "input-dim-2^40": (
        float_mlp,
        lambda m: m.graph.input[0].type.tensor_type.shape.dim[0].__setattr__("dim_value", 2**40),
        (),
        ("tensor 'input' dimension 0 must lie in 1..2147483647, not 1099511627776",),
    ),
    "input-elements": (
        float_mlp,
        lambda m: (
            m.graph.input[0].type.tensor_type.shape.dim[0].__setattr__("dim_value", 2**31 - 1)
        ),
        (),
        ("tensor 'input' must have at most 4294967296 elements", "2147483647x8"),
    ),
    "initializer-dim-2^40": (
        float_mlp,
        lambda m: init(m, "fc0.weight").dims.__setitem__(0, 2**40),
        (),
        ("initializer 'fc0.weight' dimension 0 must lie in 0..2147483647, not 1099511627776",),
    ),
    "reshape-target-2^40": (
        lambda d: models.float_mlp_reshape(
            d / "r.onnx", dims=(8, 16, 4), batch=2, input_shape=(2, 4)
        ),
        lambda m: set_init(m, "shape", np.array([2**40, 8], np.int64)),
        (),
        ("node 'reshape'",),
    ),
}


def _int32_zero_point(m: onnx.ModelProto, name: str, value: int) -> None:
    t = init(m, name)
    t.ClearField("raw_data")
    t.int32_data[:] = [value]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_model_is_refused(cli, tmp_path: Path, case: str) -> None:
    base, edit, args, fragments = CASES[case]
    model = base(tmp_path)
    if edit is not None:
        model = edited(model, tmp_path / "bad.onnx", edit)
    build = tmp_path / "out"
    r = cli("compile", model, "-o", build, *args)
    assert_refused(r, build, model.name, *fragments)


def test_nodes_out_of_order_are_sorted(cli, tmp_path: Path) -> None:
    model = edited(float_mlp(tmp_path), tmp_path / "rev.onnx", _reverse)
    r = cli("compile", model, "-o", tmp_path / "b")
    assert r.code == 0, r.err
    assert cli("simulate", tmp_path / "b", "--reference").code == 0


def test_invalid_utf8_name(cli, tmp_path: Path) -> None:
    data = float_mlp(tmp_path).read_bytes()
    assert data.count(b"fc0_matmul") == 1
    bad = tmp_path / "utf8.onnx"
    bad.write_bytes(data.replace(b"fc0_matmul", b"fc0_m\xfftmul"))
    build = tmp_path / "out"
    r = cli("compile", bad, "-o", build)
    assert_refused(r, build, "utf8.onnx", "text field", "must be valid UTF-8", r"\xff")


def test_inferred_shape_beyond_limits(cli, tmp_path: Path) -> None:
    model = models.dynamic_dim_model(tmp_path / "dyn.onnx", dims=(2, 16))
    build = tmp_path / "out"
    r = cli("compile", model, "-o", build, "--shape", f"input={2**31 - 1}x2")
    assert_refused(r, build, "tensor 'fc0_mm' (inferred) must have at most 4294967296 elements")


def test_model_path_is_a_directory(cli, tmp_path: Path) -> None:
    (tmp_path / "dir.onnx").mkdir()
    build = tmp_path / "out"
    r = cli("compile", tmp_path / "dir.onnx", "-o", build)
    assert_refused(r, build, "dir.onnx", "is a directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_model_path_is_a_pipe(cli, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.onnx")
    build = tmp_path / "out"
    r = cli("compile", tmp_path / "pipe.onnx", "-o", build)
    assert_refused(r, build, "pipe.onnx", "must be a regular file")


# --- external data ----------------------------------------------------------------------------


def external(m: onnx.ModelProto, name: str, location: str, **entries: int) -> None:
    """Make initializer ``name`` point at ``location`` (its data dropped from the model)."""
    t = init(m, name)
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    for k, v in {"location": location, **{k: str(v) for k, v in entries.items()}}.items():
        e = t.external_data.add()
        e.key, e.value = k, v


def external_model(tmp_path: Path) -> tuple[Path, Path]:
    """A float MLP whose fc0.weight lives in ``models/weights.bin``; (model dir, model)."""
    d = tmp_path / "models"
    d.mkdir()
    src = float_mlp(d)
    w = numpy_helper.to_array(init(onnx.load(src), "fc0.weight"))
    (d / "weights.bin").write_bytes(b"\0" * 16 + w.tobytes())
    model = edited(
        src, d / "ext.onnx", lambda m: external(m, "fc0.weight", "weights.bin", offset=16)
    )
    return d, model


def test_external_data_inside_the_directory_works(cli, tmp_path: Path) -> None:
    d, model = external_model(tmp_path)
    build = tmp_path / "b"
    r = cli("compile", model, "-o", build)
    assert r.code == 0, r.err
    # the build's model.onnx carries the data itself: the reference runs without models/
    (d / "weights.bin").unlink()
    r = cli("simulate", build, "--reference")
    assert r.code == 0, r.err


@pytest.mark.parametrize(
    "location, entries, fragments",
    [
        ("/etc/passwd", {}, ("'fc0.weight' external data location must be a relative path",)),
        ("../outside.bin", {}, ("must be a relative path inside the model's directory",)),
        ("sub/../../outside.bin", {}, ("not 'sub/../../outside.bin'",)),
        ("escape", {}, ("'escape' must stay inside the model's directory", "symlink")),
        ("nothere.bin", {}, ("external data file 'nothere.bin' is missing",)),
        ("sub", {}, ("'sub' must be a regular file",)),
        ("weights.bin", {"length": 8}, ("length must be 512 bytes (shape [8, 16]), not 8",)),
        ("weights.bin", {"offset": 2**40}, ("must hold 512 bytes at offset 1099511627776",)),
        ("weights.bin", {"offset": -4}, ("offset must be a non-negative integer, not '-4'",)),
    ],
    ids=[
        "absolute",
        "traversal",
        "nested-traversal",
        "symlink-escape",
        "missing",
        "directory",
        "length",
        "offset-beyond",
        "offset-negative",
    ],
)
def test_external_data_refused(cli, tmp_path: Path, location, entries, fragments) -> None:
    d, model = external_model(tmp_path)
    (tmp_path / "outside.bin").write_bytes(b"x" * 4096)
    (d / "sub").mkdir()
    os.symlink(tmp_path / "outside.bin", d / "escape")
    bad = edited(model, d / "bad.onnx", lambda m: external(m, "fc0.weight", location, **entries))
    build = tmp_path / "out"
    r = cli("compile", bad, "-o", build)
    assert_refused(r, build, "bad.onnx", *fragments)


def test_external_data_counts_against_the_size_limit(cli, tmp_path: Path) -> None:
    _, model = external_model(tmp_path)
    build = tmp_path / "out"
    size = model.stat().st_size
    r = cli("compile", model, "-o", build, "--max-model-size", str(size + 100))
    assert_refused(r, build, "the model file and its external data must be at most")


def test_opset_newer_than_onnx_knows(cli, tmp_path: Path) -> None:
    """Found by the fuzzer: opset 99 compiled (then onnxruntime refused the reference)."""

    def future(m: onnx.ModelProto) -> None:
        m.opset_import[0].version = 99

    model = edited(float_mlp(tmp_path), tmp_path / "future.onnx", future)
    build = tmp_path / "out"
    assert_refused(cli("compile", model, "-o", build), build, "the ONNX opset must lie in 1..")


def test_graph_output_without_element_type(cli, tmp_path: Path) -> None:
    """Found by the fuzzer: an UNDEFINED output type compiled, then onnxruntime refused it."""

    def untyped(m: onnx.ModelProto) -> None:
        m.graph.output[0].type.tensor_type.elem_type = TensorProto.UNDEFINED

    model = edited(float_mlp(tmp_path), tmp_path / "untyped.onnx", untyped)
    build = tmp_path / "out"
    r = cli("compile", model, "-o", build)
    assert_refused(r, build, "graph output 'output' must declare a numeric element type")
