"""The batched_matmul and transpose kinds: int8/int16 exactness against an independent integer
reference, bf16 against numpy within a stated bound, transposed operands (K^T, head split),
the decode shape (M = 1), the plan checker, the emitter and the cost terms."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.boards import load as load_board
from codesign.cost import GemmWorkload, TemporalConfig, estimate_temporal_gemm
from codesign.cost.batched import estimate_batched_gemm, strided_factor
from codesign.errors import BuildError
from codesign.examples.attention import attention_core
from codesign.kinds.transpose import run_elements
from codesign.sim.functional import Simulator

_NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}
_ONNX = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int16": TensorProto.INT16}


def _product_model(
    path,
    a_shape: tuple[int, ...],
    b_shape: tuple[int, ...],
    *,
    a_dtype: str | None = None,
    b_dtype: str | None = None,
    za: int = 0,
    zb: int = 0,
    b_perm: tuple[int, ...] | None = None,
    a_perm: tuple[int, ...] | None = None,
) -> str:
    """``y = MatMul(op(a), op(b))`` of two graph inputs; with a dtype, the input is that integer
    type behind a DequantizeLinear of scale 1 and the given zero point (so y is the exact
    integer product as float32 while it stays below 2**24)."""
    nodes, inits, inputs = [], [], []
    names = []
    for what, shape, dtype, zp, perm in (
        ("a", a_shape, a_dtype, za, a_perm),
        ("b", b_shape, b_dtype, zb, b_perm),
    ):
        if dtype is None:
            inputs.append(helper.make_tensor_value_info(what, TensorProto.FLOAT, list(shape)))
            name = what
        else:
            inputs.append(helper.make_tensor_value_info(what, _ONNX[dtype], list(shape)))
            inits.append(numpy_helper.from_array(np.array(1.0, np.float32), f"{what}_s"))
            inits.append(numpy_helper.from_array(np.array(zp, _NP[dtype]), f"{what}_z"))
            nodes.append(
                helper.make_node(
                    "DequantizeLinear", [what, f"{what}_s", f"{what}_z"], [f"{what}_f"]
                )
            )
            name = f"{what}_f"
        if perm is not None:
            nodes.append(helper.make_node("Transpose", [name], [f"{what}_t"], perm=list(perm)))
            name = f"{what}_t"
        names.append(name)
    nodes.append(helper.make_node("MatMul", names, ["y"], name="mm"))
    graph = helper.make_graph(
        nodes,
        "product",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.save(model, path)
    return str(path)


def _ints(rng, dtype: str, shape) -> np.ndarray:
    info = np.iinfo(_NP[dtype])
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(_NP[dtype])


def _layers(build, kind: str):
    return [layer for layer in build.plan.layers if layer.kind == kind]


@pytest.mark.parametrize(
    ("a_dtype", "b_dtype", "za", "zb", "batch", "M", "K", "N", "mode"),
    [
        ("uint8", "uint8", 131, 97, (2, 3), 20, 200, 24, "int8"),  # onnxruntime's default
        ("int8", "int8", -5, 7, (4,), 32, 16, 32, "int8"),
        ("int8", "uint8", 0, 255, (2,), 1, 72, 40, "int8"),  # M = 1: decode-shaped
        ("int16", "int8", -300, 3, (3,), 9, 40, 17, "int16"),
    ],
)
def test_integer_product_is_exact(tmp_path, a_dtype, b_dtype, za, zb, batch, M, K, N, mode):
    """Against an independent reference: int64 einsum of the zero-point-shifted operands."""
    path = _product_model(
        tmp_path / "m.onnx",
        (*batch, M, K),
        (*batch, K, N),
        a_dtype=a_dtype,
        b_dtype=b_dtype,
        za=za,
        zb=zb,
    )
    build = codesign.compile(path, synth=False)
    (layer,) = _layers(build, "batched_matmul")
    assert (layer.dtype, layer.batch_shape, layer.M, layer.K, layer.N) == (mode, batch, M, K, N)
    assert (layer.a_zero_point, layer.b_zero_point) == (za, zb)
    rng = np.random.default_rng(3)
    a, b = _ints(rng, a_dtype, (*batch, M, K)), _ints(rng, b_dtype, (*batch, K, N))
    want = np.einsum("...mk,...kn->...mn", a.astype(np.int64) - za, b.astype(np.int64) - zb)
    assert np.abs(want).max() < 2**31  # the int32 accumulator holds it
    acc = Simulator(build.plan).run_all({"a": a, "b": b})[layer.outputs[0]]
    assert acc.dtype == np.int32
    np.testing.assert_array_equal(acc, want)
    # and the graph output is its dequantisation (scales 1): the float32 of the exact value
    np.testing.assert_array_equal(build.simulate({"a": a, "b": b})["y"], want.astype(np.float32))


def test_integer_product_covers_several_k_passes(tmp_path) -> None:
    """K larger than one pass of the block: the cascade and pass accumulation are exercised."""
    path = _product_model(
        tmp_path / "m.onnx", (2, 8, 1000), (2, 1000, 8), a_dtype="int8", b_dtype="int8"
    )
    build = codesign.compile(path, synth=False)
    (layer,) = _layers(build, "batched_matmul")
    assert layer.schedule.k_passes > 1
    rng = np.random.default_rng(4)
    a = rng.integers(-8, 8, size=(2, 8, 1000)).astype(np.int8)
    b = rng.integers(-8, 8, size=(2, 1000, 8)).astype(np.int8)
    want = np.einsum("...mk,...kn->...mn", a.astype(np.int64), b.astype(np.int64))
    np.testing.assert_array_equal(build.simulate({"a": a, "b": b})["y"], want)


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "a_perm", "b_perm"),
    [
        ((2, 5, 24), (2, 24, 7), None, None),
        ((3, 1, 16), (3, 40, 16), None, (0, 2, 1)),  # K^T, M = 1 (decode QK^T)
        ((1, 9, 4, 16), (1, 11, 4, 16), (0, 2, 1, 3), (0, 2, 3, 1)),  # head split + K^T
    ],
)
def test_bf16_product_within_bound(tmp_path, a_shape, b_shape, a_perm, b_perm) -> None:
    """bf16 operands, fp32 accumulation: |y - y_exact| <= (2^-7 + 2^-16) * (|A| @ |B|) + 1e-6
    (each operand rounded to bf16 has relative error <= 2^-8, fp32 sums add <= K * 2^-24)."""
    path = _product_model(tmp_path / "m.onnx", a_shape, b_shape, a_perm=a_perm, b_perm=b_perm)
    build = codesign.compile(path, synth=False)
    (layer,) = _layers(build, "batched_matmul")
    assert layer.dtype == "bf16"
    assert not _layers(build, "transpose")  # folded into the read orders
    rng = np.random.default_rng(5)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    A = np.transpose(a, a_perm) if a_perm else a
    B = np.transpose(b, b_perm) if b_perm else b
    exact = A.astype(np.float64) @ B.astype(np.float64)
    bound = (2**-7 + 2**-16) * (np.abs(A).astype(np.float64) @ np.abs(B)) + 1e-6
    got = build.simulate({"a": a, "b": b})["y"]
    assert got.shape == exact.shape
    assert np.all(np.abs(got - exact) <= bound)
    assert not np.array_equal(got, exact.astype(np.float32))  # bf16, not float32


def test_decode_shape_plans_and_simulates(tmp_path) -> None:
    """One new token against 24 cached positions: QK^T is M=1, K=D, N=24 and attention x V is
    M=1, K=24, N=D, per head; int8 (quantize_static) is exact against onnxruntime."""
    import onnxruntime as ort

    for quantize in (False, True):
        path = attention_core(tmp_path / f"d{quantize}.onnx", q_len=1, kv_len=24, quantize=quantize)
        build = codesign.compile(path, synth=False)
        qk, av = _layers(build, "batched_matmul")
        assert (qk.batch_shape, qk.M, qk.K, qk.N) == ((1, 4), 1, 16, 24)
        assert (av.batch_shape, av.M, av.K, av.N) == ((1, 4), 1, 24, 16)
        assert qk.dtype == av.dtype == ("int8" if quantize else "bf16")
        rng = np.random.default_rng(6)
        feeds = {t.name: rng.standard_normal(t.shape).astype(np.float32) for t in build.plan.inputs}
        got = build.simulate(feeds)["y"]
        (want, _) = ort.InferenceSession(str(path)).run(None, feeds)
        if quantize:
            np.testing.assert_array_equal(got, want)
        else:
            cos = float(np.dot(got.ravel(), want.ravel()))
            cos /= float(np.linalg.norm(got) * np.linalg.norm(want))
            assert cos > 0.9999
        report = build.report()
        entry = next(e for e in report["layers"] if e["name"] == "qk")
        assert entry["batch"] == 4 and entry["time_s"] > 0


def test_attention_core_folds_every_foldable_transpose(tmp_path) -> None:
    """Head split (Reshape + Transpose), K^T and head merge leave no layer; the Transpose of the
    graph input into a graph output is a PL tiler layer; the plan round-trips through JSON."""
    build = codesign.compile(attention_core(tmp_path / "a.onnx"), synth=False)
    qk, av = _layers(build, "batched_matmul")
    assert (qk.a_perm, qk.b_perm) == ((0, 2, 1, 3), (0, 2, 3, 1))
    assert (av.b_perm, av.out_perm) == ((0, 2, 1, 3), (0, 2, 1, 3))
    assert [t.name for t in _layers(build, "transpose")] == ["x_t"]
    out = build.save(tmp_path / "build")
    again = codesign.load_build(out)
    assert again.plan == build.plan
    doc = json.loads((out / "kinds" / "batched_matmul.json").read_text())
    assert [entry["name"] for entry in doc["layers"]] == ["qk", "av"]
    assert doc["layers"][0]["b_perm"] == [0, 2, 3, 1]


def test_checker_refuses_a_damaged_layer(tmp_path) -> None:
    out = codesign.compile(attention_core(tmp_path / "a.onnx"), synth=False).save(tmp_path / "b")
    schedule = out / "schedule.json"
    plan = json.loads(schedule.read_text())
    layer = next(x for x in plan["layers"] if x["name"] == "av")
    layer["out_perm"] = [0, 1, 2, 3]
    schedule.write_text(json.dumps(plan))
    with pytest.raises(BuildError, match=r"'av' \(batched_matmul\).*output shape must be"):
        codesign.load_build(out)
    layer["out_perm"] = [0, 2, 1, 3]
    layer["b_zero_point"] = 3
    schedule.write_text(json.dumps(plan))
    with pytest.raises(BuildError, match="a bf16 product has no zero points"):
        codesign.load_build(out)


def test_batched_cost_is_one_launch_and_per_head_terms() -> None:
    """Without strided reads: fixed + batch * (head - fixed); strided runs add rounded bytes."""
    board = load_board("vek280")
    w = GemmWorkload(32, 16, 32, "int8")
    c = TemporalConfig(2, 8, 4, 8, 8, plio_bits=128)
    head = estimate_temporal_gemm(board, w, c)
    fixed = head.critical_path["launch"]
    est = estimate_batched_gemm(board, "x", w, c, 8, a_run_bytes=16, b_run_bytes=64)
    assert est.time_s == pytest.approx(fixed + 8 * (head.time_s - fixed))
    assert est.ddr_bytes == 8 * head.ddr_bytes and est.strided_extra_bytes == 0
    assert est.layer.ops == 8 * w.ops and est.layer.label == "modelled"
    strided = estimate_batched_gemm(board, "x", w, c, 8, a_run_bytes=12, b_run_bytes=64)
    assert strided.strided_extra_bytes == int(np.ceil(8 * head.ddr_bytes_by_operand["A"] / 3))
    assert strided.time_s > est.time_s
    assert strided_factor(12, 16) == pytest.approx(16 / 12) and strided_factor(32, 16) == 1
    assert run_elements((2, 3, 4, 5), (0, 2, 1, 3)) == 5
    assert run_elements((2, 3, 4), (0, 2, 1)) == 1


def test_uint16_activations_are_refused_not_run_in_bf16(tmp_path) -> None:
    path = _product_model(tmp_path / "m.onnx", (2, 4, 8), (2, 8, 4), a_dtype="int8", b_dtype="int8")
    model = onnx.load(path)
    for vi in model.graph.input:
        vi.type.tensor_type.elem_type = TensorProto.UINT16
    for init in model.graph.initializer:
        if init.name.endswith("_z"):
            init.CopyFrom(numpy_helper.from_array(np.array(0, np.uint16), init.name))
    del model.graph.value_info[:]
    onnx.save(onnx.shape_inference.infer_shapes(model), path)
    with pytest.raises(codesign.errors.UnsupportedError, match="no exact AIE-ML integer mode"):
        codesign.compile(path, synth=False)


@pytest.mark.parametrize("quantize", [False, True], ids=["float", "quantize_static"])
def test_transpose_feeding_a_weight_gemm(tmp_path, quantize: bool) -> None:
    """x [1, 16, 8] -> Transpose (0, 2, 1) -> MatMul W [16, 12]: the transpose (of a graph input,
    nothing to fold into) is a PL tiler layer before the weight GEMM, costed with the bytes it
    moves; the numbers are onnxruntime's (bf16 bound / int8 within one step)."""
    import onnxruntime as ort

    from codesign.examples.models import _ort_quantize

    rng = np.random.default_rng(7)
    w = (rng.standard_normal((16, 12)) / 4).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["x"], ["xt"], name="turn", perm=[0, 2, 1]),
            helper.make_node("MatMul", ["xt", "W"], ["y"], name="proj"),
        ],
        "turn_then_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 12])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    path = tmp_path / "m.onnx"
    if quantize:
        _ort_quantize(model, path, static=True, activation_type="uint8")
    else:
        onnx.save(model, path)
    build = codesign.compile(str(path), synth=False)
    kinds = [layer.kind for layer in build.plan.layers]
    assert "transpose" in kinds and "gemm" in kinds
    assert kinds.index("transpose") < kinds.index("gemm")
    x = rng.standard_normal((1, 16, 8)).astype(np.float32)
    got = build.simulate({"x": x})["y"]
    (want,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    if quantize:
        scale = float(np.abs(np.diff(np.unique(want))).min())  # one output step
        assert np.abs(got - want).max() <= scale * 1.001
    else:
        xt = np.transpose(x, (0, 2, 1)).astype(np.float64)
        bound = (2**-7 + 2**-16) * (np.abs(xt) @ np.abs(w)) + 1e-6
        assert np.all(np.abs(got - want) <= bound)
    entry = next(e for e in build.report()["layers"] if e["kind"] == "transpose")
    assert entry["read_bytes"] >= x.nbytes // (4 if quantize else 1) and entry["time_s"] > 0
