"""Crashes the fuzzer found, pinned: each was an internal error (exit 1), an escaping exception
or a stray warning, and is now a clean outcome. The cases are the fuzzer's own (shrunk) examples,
written as explicit edits of the base models; tests/robustness/test_bad_models.py pins the
messages of the classes that are now refused."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx

from codesign.examples import models
from tests.robustness import harness
from tests.robustness.test_bad_models import edited, init, node, set_init, set_values


def run_quietly(*args: object) -> harness.Outcome:
    """Run the CLI with every warning an error: the user's terminal must see one line at most."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DeprecationWarning)
        return harness.run_cli(*args)


def compile_and_simulate(model: Path, build: Path) -> tuple[int, int | None]:
    c = run_quietly("compile", model, "-o", build)
    assert c.code in (0, 2), c.err
    if c.code:
        return c.code, None
    s = run_quietly("simulate", build, "--reference")
    assert s.code in (0, 3), s.err
    return 0, s.code


def test_gemm_with_a_constant_activation(tmp_path: Path) -> None:
    """Reshape(initializer) -> MatMul: the GEMM's A is a constant. Was KeyError in simulate (the
    plan did not write constants read by GEMM layers). Canonicalisation now folds the constant
    GEMM, and with it the whole graph, which no longer reads its input: the compile refuses that
    in one line naming the output, and writes nothing."""
    src = models.float_mlp_reshape(
        tmp_path / "r.onnx", dims=(8, 16, 4), batch=2, input_shape=(2, 4)
    )
    model = edited(
        src, tmp_path / "m.onnx", lambda m: node(m, "reshape").input.__setitem__(0, "fc0.bias")
    )
    c = run_quietly("compile", model, "-o", tmp_path / "b")
    assert c.code == 2, c.err
    assert "graph output 'output' must be computed, not a constant" in c.err
    assert len(c.err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_unused_output_of_a_multi_output_op(tmp_path: Path) -> None:
    """DynamicQuantizeLinear whose scale output nobody reads. Was AssertionError ("tensor
    input_scale has no type") after pruning."""
    src = models.dynamic_mlp(tmp_path / "d.onnx", dims=(8, 16, 4), batch=2, reduce_range=True)

    def rewire(m: onnx.ModelProto) -> None:
        node(m, "fc0_matmul_quant_scales_mul").input[0] = "fc0.weight_scale"

    model = edited(src, tmp_path / "m.onnx", rewire)
    assert compile_and_simulate(model, tmp_path / "b")[0] == 0


def test_bf16_gemm_with_huge_finite_weights(tmp_path: Path) -> None:
    """Weights near the float32 limit: was OverflowError (an exactness bound computed for bf16
    layers) in simulate; now exact IEEE arithmetic, compared with onnxruntime."""
    src = models.float_mlp(tmp_path / "f.onnx", dims=(8, 16, 4), batch=2, use_gemm=True)
    big = np.full((4, 16), 1e38, np.float32)
    model = edited(src, tmp_path / "m.onnx", lambda m: set_init(m, "fc1.weight", big))
    code, sim = compile_and_simulate(model, tmp_path / "b")
    assert code == 0 and sim in (0, 3)


def test_bias_beyond_the_accumulator_stays_a_float_add(tmp_path: Path) -> None:
    """bias / scale beyond int32: was an invalid-cast warning and a wrapped (wrong) int32 bias;
    the bias is no longer folded into the GEMM."""
    src = models.qdq_mlp(
        tmp_path / "q.onnx", dims=(8, 16, 4), batch=2, per_channel=True, use_gemm=True
    )

    def huge_bias_scale(m: onnx.ModelProto) -> None:
        set_values(m, "fc1.bias_quantized_scale", lambda a: a.fill(1e30))

    model = edited(src, tmp_path / "m.onnx", huge_bias_scale)
    assert compile_and_simulate(model, tmp_path / "b")[0] == 0
    layers = json.loads((tmp_path / "b" / "schedule.json").read_text())["layers"]
    assert any(layer.get("fn") == "add" for layer in layers)


def test_scale_from_an_activation(tmp_path: Path) -> None:
    """A Q/DQ scale wired to a 2-D activation: was ValueError (reshape) in the simulator."""
    src = models.qdq_gemm(tmp_path / "g.onnx", 3, 8, 4)
    model = edited(
        src,
        tmp_path / "m.onnx",
        lambda m: node(m, "output_dequantize").input.__setitem__(1, "input"),
    )
    r = run_quietly("compile", model, "-o", tmp_path / "b")
    assert r.code == 2
    assert "quantisation scale 'input' must be a scalar or 1-D, not shape (3, 8)" in r.err


def test_dropped_quantisation_axis(tmp_path: Path) -> None:
    """Per-channel DequantizeLinear without its axis: was ValueError (broadcast) in constant
    folding."""
    src = models.qdq_mlp(
        tmp_path / "q.onnx", dims=(8, 16, 4), batch=2, per_channel=True, use_gemm=True
    )

    def drop_axis(m: onnx.ModelProto) -> None:
        n = node(m, "fc0.weight_DequantizeLinear")
        del n.attribute[:]

    model = edited(src, tmp_path / "m.onnx", drop_axis)
    r = run_quietly("compile", model, "-o", tmp_path / "b")
    assert r.code == 2 and "per-axis scale 'fc0.weight_scale' must have 8 elements" in r.err


def test_float_overflow_is_not_a_warning(tmp_path: Path) -> None:
    """Finite weights whose products overflow float32: numpy's RuntimeWarnings used to reach
    stderr in compile (constant folding), simulate and the comparison (inf - inf)."""
    src = models.float_mlp(tmp_path / "f.onnx", dims=(8, 16, 4), batch=2)

    def scale_up(m: onnx.ModelProto) -> None:
        w = onnx.numpy_helper.to_array(init(m, "fc0.bias")).copy()
        set_init(m, "fc0.bias", np.full_like(w, 3e38))

    model = edited(src, tmp_path / "m.onnx", scale_up)
    assert compile_and_simulate(model, tmp_path / "b")[0] == 0


def test_external_reshape_target(tmp_path: Path) -> None:
    """A Reshape target in external data: onnx's own loader used to be called on it (reading
    relative to the working directory) and failed with a ValidationError (exit 1). Now the data
    is read by codesign's contained loader first, then checked."""
    d = tmp_path / "models"
    d.mkdir()
    src = models.float_mlp_reshape(d / "r.onnx", dims=(8, 16, 4), batch=2, input_shape=(2, 4))
    for values, expect in (([2, 8], 0), ([2**59, 2**60], 2)):
        (d / "shape.bin").write_bytes(np.array(values, "<i8").tobytes())

        def external_shape(m: onnx.ModelProto) -> None:
            t = init(m, "shape")
            t.ClearField("raw_data")
            t.ClearField("int64_data")
            t.data_location = onnx.TensorProto.EXTERNAL
            e = t.external_data.add()
            e.key, e.value = "location", "shape.bin"

        model = edited(src, d / "m.onnx", external_shape)
        build = tmp_path / f"b{expect}"
        r = run_quietly("compile", model, "-o", build)
        assert r.code == expect, r.err
        if expect:
            assert "node 'reshape' (Reshape): the target shape must list dimensions" in r.err
        else:
            assert run_quietly("simulate", build, "--reference").code == 0


def test_dequantised_weight_beyond_float32(tmp_path: Path) -> None:
    """A weight scale whose DQ(W) overflows float32 (onnxruntime: inf) while sx * sw does not:
    the integer GEMM gave finite numbers 255 LSB away from the reference (exit 3). The fold is
    refused now, naming the scales (a bf16 fallback would be another arithmetic)."""
    src = models.qdq_mlp(
        tmp_path / "q.onnx", dims=(8, 16, 4), batch=2, per_channel=True, use_gemm=True
    )
    model = edited(
        src,
        tmp_path / "m.onnx",
        lambda m: set_values(m, "fc1.weight_scale", lambda a: a.fill(3.4e38)),
    )
    r = run_quietly("compile", model, "-o", tmp_path / "b")
    assert r.code == 2 and "node 'fc1_gemm'" in r.err and "float32 range" in r.err
