"""Attention written with explicit torch ops (q @ k.transpose(-2, -1) * scale, @ v, head split
and merge with view/transpose; 4 heads, head dim 16, sequence 32), exported by both torch
exporters, in float and quantized by onnxruntime's quantize_static (QDQ, per tensor), compiled
through codesign.compile and simulated against onnxruntime.

The products alone ((q @ k^T * scale) @ v) and the full block with Softmax. The reference is
codesign's: onnxruntime at optimisation level ``basic`` (the QDQ graph as written). At
``extended``/``all`` onnxruntime replaces DQ -> Softmax -> Q by its QLinearSoftmax kernel, whose
arithmetic differs from the QDQ graph; test_qlinear_softmax_is_the_gap pins that difference and
a strict xfail keeps the fused comparison visible.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import codesign
from codesign.frontend.reference import run_onnxruntime

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

HEADS, HEAD_DIM, SEQ = 4, 16, 32
EMBED = HEADS * HEAD_DIM


class Attention(torch.nn.Module):
    """Multi-head self-attention with explicit ops (no fused SDPA)."""

    def __init__(self, softmax: bool) -> None:
        super().__init__()
        self.softmax = softmax
        self.q, self.k, self.v, self.o = (torch.nn.Linear(EMBED, EMBED) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q(x).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)
        k = self.k(x).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)
        v = self.v(x).view(b, s, HEADS, HEAD_DIM).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) * (1.0 / HEAD_DIM**0.5)
        if self.softmax:
            scores = scores.softmax(dim=-1)
        y = (scores @ v).transpose(1, 2).contiguous().view(b, s, EMBED)
        return self.o(y)


def _export(path, softmax: bool, dynamo: bool) -> str:
    torch.manual_seed(0)
    model = Attention(softmax).eval()
    x = torch.randn(1, SEQ, EMBED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=dynamo, input_names=["x"], output_names=["y"]
        )
    return str(path)


def _quantize(src: str, dst) -> str:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(1)
            self.it = iter(
                [{"x": rng.standard_normal((1, SEQ, EMBED)).astype(np.float32)} for _ in range(4)]
            )

        def get_next(self):
            return next(self.it, None)

    quantize_static(src, str(dst), Reader(), quant_format=QuantFormat.QDQ)  # its defaults
    return str(dst)


def _run(path: str, opt_level: str = "basic") -> tuple[codesign.Build, np.ndarray, np.ndarray]:
    """Simulated and onnxruntime outputs; the reference is codesign's (onnxruntime at
    ``opt_level``, by default ``basic``: QDQ executed as written, the ONNX semantics)."""
    build = codesign.compile(path, synth=False)
    x = np.random.default_rng(0).standard_normal((1, SEQ, EMBED)).astype(np.float32)
    got = build.simulate({"x": x})["y"]
    ref = Path(path).with_name("reference.onnx")  # the build's self-contained model.onnx
    ref.write_bytes(build.reference)
    want = run_onnxruntime(ref, {"x": x}, opt_level)["y"]
    return build, got, want


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_products_float(tmp_path, dynamo: bool) -> None:
    """bf16 products (and bf16 projections): cosine >= 0.9999 and every element within 2% of
    the output's largest magnitude; no Transpose is left as a layer."""
    build, got, want = _run(_export(tmp_path / "a.onnx", softmax=False, dynamo=dynamo))
    kinds = [layer.kind for layer in build.plan.layers]
    assert kinds.count("batched_matmul") == 2 and "transpose" not in kinds
    assert {layer.dtype for layer in build.plan.layers if layer.kind == "batched_matmul"} == {
        "bf16"
    }
    assert _cosine(got, want) >= 0.9999
    assert np.abs(got - want).max() <= 0.02 * np.abs(want).max()


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_products_quantize_static(tmp_path, dynamo: bool) -> None:
    """quantize_static's QDQ (uint8 activations, int8 weights, per tensor): both products run
    int8 with both zero points; the int8 outputs agree with onnxruntime within 1 step on >= 99%
    of the elements."""
    src = _export(tmp_path / "a.onnx", softmax=False, dynamo=dynamo)
    path = _quantize(src, tmp_path / "q.onnx")
    build, got, want = _run(path)
    products = [layer for layer in build.plan.layers if layer.kind == "batched_matmul"]
    assert [p.dtype for p in products] == ["int8", "int8"]
    assert "transpose" not in [layer.kind for layer in build.plan.layers]
    scale = _output_scale(path)
    steps = np.abs(got - want) / scale
    assert np.mean(steps <= 1 + 1e-3) >= 0.99


def _output_scale(path: str) -> float:
    """The scale of the DequantizeLinear that writes graph output y."""
    model = onnx.load(path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            inits[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    (dq,) = [n for n in model.graph.node if n.output[0] == "y"]
    return float(inits[dq.input[1]])


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_full_attention(tmp_path, dynamo: bool) -> None:
    """The whole attention block with Softmax, float and quantize_static."""
    build, got, want = _run(_export(tmp_path / "a.onnx", softmax=True, dynamo=dynamo))
    assert [layer.kind for layer in build.plan.layers].count("batched_matmul") == 2
    assert _cosine(got, want) >= 0.999


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_full_attention_quantized_is_close(tmp_path, dynamo: bool) -> None:
    """quantize_static of the whole block (Softmax included): cosine >= 0.99 to onnxruntime."""
    _export(tmp_path / "a.onnx", softmax=True, dynamo=dynamo)
    path = _quantize(str(tmp_path / "a.onnx"), tmp_path / "q.onnx")
    build, got, want = _run(path)
    assert [layer.kind for layer in build.plan.layers].count("batched_matmul") == 2
    assert _cosine(got, want) >= 0.99


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_full_attention_quantized_within_one_lsb(tmp_path, dynamo: bool) -> None:
    """quantize_static of the whole block, Softmax included, against the documented reference
    (onnxruntime at ``basic``, the QDQ graph as written): the issue's bar, <= 1 LSB on >= 99 %
    of the outputs and cosine >= 0.999 -- and the fidelity check of ``simulate --reference``
    passes. (Measured: every element equal.)"""
    from codesign.runtime.fidelity import compare
    from codesign.sim.functional import Simulator

    _export(tmp_path / "a.onnx", softmax=True, dynamo=dynamo)
    path = _quantize(str(tmp_path / "a.onnx"), tmp_path / "q.onnx")
    build, got, want = _run(path)
    assert np.mean(np.abs(got - want) / _output_scale(path) <= 1 + 1e-3) >= 0.99
    assert _cosine(got, want) >= 0.999
    sim = Simulator(build.plan, build.root)
    constants = {name: sim.data(f) for name, f in build.plan.constants.items()}
    (result,) = compare(build.plan, {"y": got}, {"y": want}, constants)
    assert result.kind == "quantized" and result.passed, result


@pytest.mark.xfail(
    strict=True,
    reason="onnxruntime at 'extended'/'all' is not the QDQ graph: it fuses DQ->Softmax->Q into "
    "com.microsoft QLinearSoftmax (256-entry exp table, outputs scaled by floor(1/y_scale) = 254 "
    "for y_scale = fp32(1/255), so probabilities sit 1 LSB low on ~3 %), which P@V amplifies "
    "to 2-4 LSB on ~5 % of the block's outputs; on x86 without VNNI its u8 x s8 QLinearMatMul "
    "(vpmaddubsw int16 saturation) adds tens of LSB. codesign computes the QDQ semantics "
    "(test_full_attention_quantized_within_one_lsb; test_qlinear_softmax_is_the_gap pins it)",
)
def test_full_attention_quantized_within_one_lsb_of_fused_onnxruntime(tmp_path) -> None:
    _export(tmp_path / "a.onnx", softmax=True, dynamo=True)
    path = _quantize(str(tmp_path / "a.onnx"), tmp_path / "q.onnx")
    build, got, want = _run(path, "extended")
    assert np.mean(np.abs(got - want) / _output_scale(path) <= 1 + 1e-3) >= 0.99


def _qlinear_softmax(xq: np.ndarray, x_scale: np.float32, y_scale: np.float32, y_zp: int):
    """onnxruntime's com.microsoft QLinearSoftmax on CPU (opset 13, last axis), as its kernel
    computes it: a 256-entry fp32 table of exp((x - x_max) * x_scale + shift) (shift keeps the
    row sum inside fp32), an fp32 row sum in order, and q = rint(e * floor(1 / y_scale) / sum)
    + y_zp. floor(1 / y_scale) is 254, not 255, for y_scale = fp32(1/255)."""
    d = xq.shape[-1]
    shift = max(0.0, np.log(float(np.finfo(np.float32).max) / d) - 5.0) / float(x_scale)
    big = np.float32(np.floor(np.float32(1.0) / y_scale))
    rows = xq.reshape(-1, d).astype(np.int64)
    out = np.empty(rows.shape, np.int64)
    for r, row in enumerate(rows):
        e = np.exp(((row - row.max()) + shift) * float(x_scale)).astype(np.float32)
        total = np.float32(0.0)
        for v in e:
            total = np.float32(total + v)
        out[r] = np.rint((e * big).astype(np.float32) / total).astype(np.int64) + y_zp
    return out.reshape(xq.shape)


def test_qlinear_softmax_is_the_gap(tmp_path) -> None:
    """Why the fused reference differs (the xfail above): DQ -> Softmax -> Q with
    quantize_static's Softmax output scale fp32(1/255). At 'extended' onnxruntime runs
    com.microsoft QLinearSoftmax, which the model of its kernel above reproduces bit for bit and
    which sits 1 LSB from the QDQ value on some elements; codesign equals 'basic' (the QDQ graph
    as written) on every element."""
    from onnx import TensorProto, helper, numpy_helper

    x_scale, y_scale = np.float32(0.0148286745), np.float32(1.0 / 255.0)
    shape = [1, 4, 32, 32]
    inits = [
        numpy_helper.from_array(np.array(x_scale), "xs"),
        numpy_helper.from_array(np.array(19, np.int8), "xz"),
        numpy_helper.from_array(np.array(y_scale), "ys"),
        numpy_helper.from_array(np.array(-128, np.int8), "yz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("Softmax", ["xd"], ["p"], axis=-1),
        helper.make_node("QuantizeLinear", ["p", "ys", "yz"], ["pq"]),
        helper.make_node("DequantizeLinear", ["pq", "ys", "yz"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "s.onnx"
    onnx.save(model, str(path))
    x = (np.random.default_rng(3).standard_normal(shape) * 1.5).astype(np.float32)

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "fused.onnx")
    (fused,) = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )
    fused_ops = [n.op_type for n in onnx.load(str(tmp_path / "fused.onnx")).graph.node]
    assert "QLinearSoftmax" in fused_ops and "Softmax" not in fused_ops

    xq = np.clip(np.rint(x / x_scale) + 19, -128, 127)
    model_of_kernel = (_qlinear_softmax(xq, x_scale, y_scale, -128) + 128) * y_scale
    np.testing.assert_array_equal(fused, model_of_kernel.astype(np.float32))

    basic = run_onnxruntime(path, {"x": x}, "basic")["y"]
    steps = np.rint(np.abs(fused - basic) / y_scale)
    assert steps.max() == 1 and 0 < np.mean(steps) < 0.2  # the gap is real, and 1 LSB

    got = codesign.compile(str(path), synth=False).simulate({"x": x})["y"]
    np.testing.assert_array_equal(got, basic)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_prune_heads(tmp_path, dynamo: bool) -> None:
    """``codesign prune --method heads --sparsity 0.5`` on the block: 2 of the 4 heads lose
    their rows of the output projection and their value columns; the output changes (the
    heads are gone), and codesign simulates the pruned block as it does the float one."""
    from codesign.frontend.prune import prune_model

    src = _export(tmp_path / "a.onnx", softmax=True, dynamo=dynamo)
    data, pruned = prune_model(src, "heads", "0.5")
    assert [(p.shape, p.zeros_after - p.zeros_before) for p in pruned] == [
        ((EMBED, EMBED), 2 * HEAD_DIM * EMBED),
        ((EMBED, EMBED), 2 * HEAD_DIM * EMBED),
    ]
    path = tmp_path / "pruned.onnx"
    path.write_bytes(data)
    model = onnx.load(str(path))
    (o_weight,) = [t for t in model.graph.initializer if t.name == pruned[0].name]
    w = onnx.numpy_helper.to_array(o_weight)
    # the head's K rows, in [K, N] (MatMul) or [N, K] (Gemm transB) storage
    rows_zero = [
        bool(np.all(w.reshape(HEADS, HEAD_DIM, -1)[h] == 0))
        or bool(np.all(w.T.reshape(HEADS, HEAD_DIM, -1)[h] == 0))
        for h in range(HEADS)
    ]
    assert sum(rows_zero) == 2
    build, got, want = _run(str(path))
    assert _cosine(got, want) >= 0.999
    (dense,) = ort.InferenceSession(src).run(
        None, {"x": np.random.default_rng(0).standard_normal((1, SEQ, EMBED)).astype(np.float32)}
    )
    assert not np.allclose(want, dense)  # the heads are gone
