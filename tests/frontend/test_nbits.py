"""MatMulNBits (com.microsoft, 4-bit): the unpacking pinned against a plain-Python reading of
the format, the int4 stream layout, the int8 x int4 arithmetic against onnxruntime's
accuracy_level-4 kernel, the mode the cost model picks, and the one-line refusals."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import codesign
from codesign.errors import CodesignError
from codesign.frontend.lower_nbits import unpack_weight
from codesign.frontend.reference import run_onnxruntime
from codesign.ir.layouts import pack_b, pack_b4, unpack_b, unpack_b4
from codesign.kinds import nbits as nbits_kind
from codesign.sim import numerics

# --- the format, by hand -------------------------------------------------------------------


def _plain_codes(packed: bytes, n: int, k: int, block: int) -> list[list[int]]:
    """Codes [n][k] read byte by byte: column-major blocks, low nibble first."""
    kb = -(-k // block)
    per_col = kb * block // 2
    cols = []
    for col in range(n):
        codes = []
        for byte in packed[col * per_col : (col + 1) * per_col]:
            codes.append(byte & 0x0F)
            codes.append(byte >> 4)
        cols.append(codes[:k])
    return cols


def test_unpacking_is_low_nibble_first_with_default_zero_point_8() -> None:
    n, k, block = 3, 40, 16  # 3 blocks per column, the last one partial
    kb = 3
    rng = np.random.default_rng(0)
    packed = rng.integers(0, 256, size=(n, kb, block // 2), dtype=np.uint8)
    scales = rng.uniform(0.5, 2, size=n * kb).astype(np.float32)
    codes, s, zp = unpack_weight(packed, scales, None, k, n, block)
    assert codes.tolist() == _plain_codes(packed.tobytes(), n, k, block)
    assert codes[0, 0] == packed[0, 0, 0] & 0x0F and codes[0, 1] == packed[0, 0, 0] >> 4
    assert zp.tolist() == [[8] * kb] * n  # no zero points: 2**(bits-1)
    assert s.shape == (n, kb) and s[1, 2] == scales[1 * kb + 2]
    # zero points: per column, ceil(kb / 2) bytes, low nibble first, the last one padded
    zbytes = np.array([[0x21, 0x03], [0x54, 0x06], [0x87, 0x09]], dtype=np.uint8)
    _, _, zp = unpack_weight(packed, scales, zbytes, k, n, block)
    assert zp.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    w = numerics.dequantize_nbits(codes, s, zp, block)
    assert w.shape == (k, n)
    assert w[17, 2] == np.float32(int(codes[2, 17]) - 8) * s[2, 1]  # block 1 of column 2


def test_nibble_packing_round_trips() -> None:
    codes = np.arange(-8, 8, dtype=np.int8).reshape(2, 8)
    packed = numerics.pack_nibbles(codes)
    assert packed.shape == (2, 4) and packed[0, 0] == (0x8 | (0x9 << 4))
    assert (numerics.int4_from_nibbles(numerics.unpack_nibbles(packed, 8)) == codes).all()


def test_int4_stream_is_the_int8_stream_at_half_the_bytes() -> None:
    from codesign.boards import load
    from codesign.schedulers import tempus

    s = tempus.schedule_gemm(load("vek280"), 16, 96, 40, "int8x4")
    w = np.random.default_rng(1).integers(-8, 8, size=(96, 40)).astype(np.int8)
    stream = pack_b4(w, s)
    assert stream.dtype == np.uint8 and stream.size == (s.padded_K * s.padded_N + 1) // 2
    flat = pack_b(w, s)  # the int8 stream, one element per byte
    assert (numerics.int4_from_nibbles(numerics.unpack_nibbles(stream, flat.size)) == flat).all()
    assert (unpack_b4(stream, s) == unpack_b(flat, s)).all()


# --- against onnxruntime ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _matmul_model(path: Path, m: int, k: int, n: int, **quant) -> Path:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    w = (np.random.default_rng(2).normal(size=(k, n)) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, m, k])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, m, n])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    q = MatMulNBitsQuantizer(copy.deepcopy(model), **quant)
    q.process()
    onnx.save(q.model.model, path)
    return path


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("block", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [False, True])
def test_int8x4_mode_matches_onnxruntime_accuracy_level_4(
    block, symmetric, tmp_path: Path, monkeypatch
) -> None:
    """K = 200 is not a whole number of blocks nor of the block's K pass: the block boundaries
    fall inside the cores' tiles. The only difference left is float32 summation order."""
    monkeypatch.setattr(nbits_kind, "MODES", ("int8x4",))
    model = _matmul_model(
        tmp_path / "m.onnx",
        16,
        200,
        48,
        block_size=block,
        is_symmetric=symmetric,
        accuracy_level=4,
    )
    build = codesign.compile(model, synth=False)
    (layer,) = build.plan.layers
    assert layer.kind == "gemm_nbits" and layer.mode == "int8x4"
    assert layer.weight.layout == "tempus.b4/1" and (layer.zero is None) == symmetric
    x = {"x": np.random.default_rng(3).normal(size=(1, 16, 200)).astype(np.float32)}
    y, ref = build.simulate(x)["y"], run_onnxruntime(model, x)["y"]
    # onnxruntime's CompInt8 and codesign sum the same float32 block terms in other orders
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()
    # and the simulator (tile walk) is the numerics' whole-matrix reference, bit for bit
    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(model).graph.initializer}
    node = onnx.load(model).graph.node[0]
    codes, s, zp = unpack_weight(
        init[node.input[1]],
        init[node.input[2]],
        init[node.input[3]] if len(node.input) > 3 else None,
        200,
        48,
        block,
    )
    want = numerics.reference_nbits_int8(x["x"].reshape(16, 200), codes, s, zp, block)
    assert np.array_equal(y.reshape(16, 48), want)


def test_cost_model_picks_int8x4_for_a_weight_bound_layer(tmp_path: Path) -> None:
    """16 rows against a 1024 x 1024 weight: streaming int4 (half a byte) beats bf16 (two)."""
    model = _matmul_model(tmp_path / "m.onnx", 16, 1024, 1024, block_size=128, accuracy_level=4)
    build = codesign.compile(model, synth=False)
    (layer,) = build.plan.layers
    assert layer.mode == "int8x4", layer.reason
    assert layer.alternative_s > 0 and "bf16" in layer.reason
    (row,) = [r for r in build.report()["layers"] if r["name"] == layer.name]
    assert row["mode"] == "int8x4" and row["dtype"] == "int8x4"
    assert row["weight_bytes"] == 1024 * 1024 // 2 + 8 * 1024 * 5  # int4 + scales, zero points
    assert row["block_epilogue_s"] > 0 and row["a_quantizer_s"] > 0
    # the terminal and HTML reports name the mode and why
    from rich.console import Console

    from codesign.report.terminal import render_terminal

    con = Console(record=True, width=80)
    render_terminal(build.report(), con)
    text = " ".join(con.export_text().split())
    assert "compute mode chosen by the cost model" in text and "int8x4" in text
    html = (build.save(tmp_path / "b") / "report" / "report.html").read_text()
    assert 'id="modes"' in html and "block epilogue" in html


def test_accuracy_level_0_runs_the_dequantised_weight_as_float(tmp_path: Path) -> None:
    """The quantizer's default (no accuracy_level): onnxruntime multiplies in float32 with the
    dequantised weight; codesign runs that weight as a bf16 GEMM (no int8 activations)."""
    model = _matmul_model(tmp_path / "m.onnx", 16, 128, 64, block_size=32)
    assert not any(a.name == "accuracy_level" for a in onnx.load(model).graph.node[0].attribute)
    build = codesign.compile(model, synth=False)
    assert [(g.kind, g.dtype) for g in build.plan.layers] == [("gemm", "bf16")]
    x = {"x": np.random.default_rng(4).normal(size=(1, 16, 128)).astype(np.float32)}
    assert _cosine(build.simulate(x)["y"], run_onnxruntime(model, x)["y"]) >= 0.999


def test_eight_bit_matmulnbits_is_refused_in_one_line(tmp_path: Path) -> None:
    model = _matmul_model(tmp_path / "m.onnx", 4, 64, 32, block_size=32, bits=8)
    with pytest.raises(CodesignError) as e:  # without --strict it runs on the Host
        codesign.compile(model, synth=False, strict=True)
    msg = str(e.value)
    assert "\n" not in msg and "MatMulNBits" in msg and "bits=8" in msg and "bits=4" in msg


def test_int8x4_build_round_trips_through_disk(tmp_path: Path, monkeypatch) -> None:
    """schedule.json carries the layer (mode, reason, int4 stream, scales, zero points) and the
    simulator runs it from the build's files to the same bits as from memory."""
    monkeypatch.setattr(nbits_kind, "MODES", ("int8x4",))
    model = _matmul_model(tmp_path / "m.onnx", 8, 96, 32, block_size=32, accuracy_level=4)
    build = codesign.compile(model, synth=False)
    saved = codesign.load_build(build.save(tmp_path / "build"))
    (layer,) = saved.plan.layers
    assert layer == build.plan.layers[0]
    stream = (tmp_path / "build" / layer.weight.path).read_bytes()
    assert len(stream) == layer.schedule.padded_K * layer.schedule.padded_N // 2
    x = {"x": np.random.default_rng(5).normal(size=(1, 8, 96)).astype(np.float32)}
    assert np.array_equal(saved.simulate(x)["y"], build.simulate(x)["y"])
