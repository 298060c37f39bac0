"""2:4-in-K weights stream compressed (issue 12 item 5): the ``tempus.b-nm/1`` packing round
trips exactly for every native shape, a 2:4-pruned torch MLP compiles with compressed weights
(fewer weight bytes, the N:M expander block in rtl/, the modelled gain in the report) and
simulates from the compressed packing to the same numbers as the dense plan; the per-layer
sparsity report shows zero fractions and N:M patterns in the terminal, HTML and JSON."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from codesign.boards import load as load_board
from codesign.ir.layouts import from_nm_order, nm_order, pack_b, pack_index, unpack_index
from codesign.ir.plan import Block
from codesign.kinds import gemm as gemm_kind
from codesign.kinds.registry import rtl_specs_for
from codesign.report.html import render_html
from codesign.report.terminal import render_terminal
from codesign.schedulers import tempus
from codesign.sim import numerics


@pytest.mark.parametrize("dtype", ["int8", "int16", "bf16"])
def test_nm_packing_round_trips_exactly(dtype: str) -> None:
    rng = np.random.default_rng(0)
    K, N = 40, 24
    s = tempus.schedule_gemm(load_board("vek280"), 16, K, N, dtype, Block(2, 8), time_limit_s=0)
    w = rng.integers(-100, 100, (K, N)).astype(np.float32 if dtype == "bf16" else np.int16)
    w = numerics.nm_prune(w.T, 2, 4).T  # 2:4 along K
    assert gemm_kind.streams_nm(w, s)
    values, index = gemm_kind.compress_b(w, s, 2, 4)
    dense = pack_b(w, s)
    assert values.size * 2 == dense.size
    packed = pack_index(index, 2)
    assert packed.size * 4 == index.size  # four 2-bit positions per byte
    np.testing.assert_array_equal(unpack_index(packed, 2, index.size), index)
    np.testing.assert_array_equal(from_nm_order(nm_order(dense, s), s), dense)
    rows = numerics.nm_expand(
        values.reshape(-1, s.native[1] // 2), index.reshape(-1, s.native[1] // 2), 2, 4
    )
    np.testing.assert_array_equal(from_nm_order(rows, s), dense)


def test_dense_or_padding_only_zeros_do_not_stream_compressed() -> None:
    s = tempus.schedule_gemm(load_board("vek280"), 16, 6, 8, "int8", Block(2, 8), time_limit_s=0)
    w = np.ones((6, 8), np.int8)
    w[1::2] = 0  # 2:4 in K, but K = 6 is not a multiple of 4: the padding would fake the groups
    assert not gemm_kind.streams_nm(w, s)
    s = tempus.schedule_gemm(load_board("vek280"), 16, 8, 8, "int8", Block(2, 8), time_limit_s=0)
    assert not gemm_kind.streams_nm(np.ones((8, 8), np.int8), s)


def test_best_nm_and_zero_fraction() -> None:
    w = np.arange(1, 33, dtype=np.int8).reshape(8, 4)
    assert numerics.best_nm(w) is None
    w[1::2] = 0
    assert numerics.best_nm(w) == (1, 2)
    w[2::4] = 0
    assert numerics.best_nm(w) == (1, 4)
    assert numerics.nm_satisfied(w, 2, 4) and not numerics.nm_satisfied(w.T, 2, 4)
    ws = gemm_kind.weight_sparsity(w)
    assert (ws.zeros, ws.elements, ws.nm) == (24, 32, "1:4")


torch = pytest.importorskip("torch")

from tests.test_pruning import export, inputs, quantize  # noqa: E402


def mlp_24(seed: int = 0) -> torch.nn.Module:
    """Linear(32, 64) -> ReLU -> Linear(64, 16), both weights pruned 2:4 along K (torch's
    weight is [N, K]: groups of 4 inputs of one neuron keep their 2 largest)."""
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    with torch.no_grad():
        for lin in (m[0], m[2]):
            lin.weight.copy_(torch.from_numpy(numerics.nm_prune(lin.weight.numpy(), 2, 4)))
    return m.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sparse24")
    f = export(mlp_24(), d / "mlp24.onnx", dynamo=False)
    return {"float": f, "qdq": quantize(f, d / "mlp24_q.onnx")}


@pytest.mark.parametrize("form", ["float", "qdq"])
def test_24_weights_stream_compressed_and_simulate_exactly(
    models: dict[str, Path], form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codesign.api import compile as compile_model
    from codesign.frontend.reference import run_onnxruntime

    model = models[form]
    build = compile_model(model, synth=False)
    gemms = build.plan.gemms()
    assert all(g.sparse is not None and g.weight.layout == "tempus.b-nm/1" for g in gemms)
    assert any(s.block == "sparse_expander" for s in rtl_specs_for(build.plan))
    x = inputs(seed=5)[0]
    got = build.simulate(x)["y"]
    monkeypatch.setattr(gemm_kind, "streams_nm", lambda w, s: False)
    dense = compile_model(model, synth=False)
    assert all(g.sparse is None for g in dense.plan.gemms())
    # exactly the dense plan's numbers, from fewer weight bytes
    np.testing.assert_array_equal(got, dense.simulate(x)["y"])
    for sp, dn in zip(gemms, dense.plan.gemms(), strict=True):
        stored = len(build.plan.data[sp.weight.sha256]) + len(
            build.plan.data[sp.sparse.index.sha256]
        )
        full = len(dense.plan.data[dn.weight.sha256])
        ratio = 0.625 if form == "qdq" else 0.5625  # int8 / bf16 values + 2-bit positions
        assert stored == pytest.approx(full * ratio)
    ref = run_onnxruntime(model, x)["y"]
    if form == "float":
        np.testing.assert_allclose(got, ref, rtol=0, atol=2**-7 * float(np.abs(ref).max()))
    report = build.report()
    for layer, dn in zip(report["layers"][: len(gemms)], dense.report()["layers"], strict=False):
        if layer["kind"] != "gemm":
            continue
        assert layer["sparse_b"] == "2:4" and layer["weight_nm"] == "2:4"
        assert layer["weight_zero_fraction"] >= 0.5
        assert layer["weight_bytes"] < layer["weight_bytes_dense"]
        assert layer["sparse_gain"] >= 1.0 and layer["ddr_bytes"] < dn["ddr_bytes"]


def test_sparsity_report_terminal_html_json(models: dict[str, Path]) -> None:
    from codesign.api import compile as compile_model

    report = compile_model(models["qdq"], synth=False).report()
    gemm_rows = [x for x in report["layers"] if x["kind"] == "gemm"]
    assert gemm_rows and all(x["weight_nm"] == "2:4" for x in gemm_rows)
    buf = io.StringIO()
    render_terminal(report, Console(file=buf, width=80))
    text = buf.getvalue()
    assert "weight sparsity per GEMM" in text and "2:4 compressed" in text
    html = render_html(report)
    assert 'id="sparsity"' in html and "2:4 compressed" in html


def test_gain_is_modelled_on_a_ddr_bound_layer() -> None:
    """The compressed stream moves fewer B bytes out of DDR; on a weight-heavy GEMM the model's
    time drops with them (compute is not claimed faster: the sparse mmul rate is not in the
    sources)."""
    from codesign.cost import GemmWorkload, TemporalConfig, estimate_temporal_gemm

    board = load_board("vek280")
    cfg = TemporalConfig(2, 8, 16, 64, 64)
    dense = estimate_temporal_gemm(board, GemmWorkload(16, 4096, 4096, "int8"), cfg)
    sparse = estimate_temporal_gemm(board, GemmWorkload(16, 4096, 4096, "int8", 0.625), cfg)
    assert sparse.ddr_bytes_by_operand["B"] == pytest.approx(
        dense.ddr_bytes_by_operand["B"] * 0.625, rel=1e-6
    )
    assert sparse.time_s < dense.time_s


@pytest.mark.gxx
@pytest.mark.skipif(__import__("shutil").which("g++") is None, reason="needs g++")
def test_generated_pl_movers_expand_the_compressed_weights(models: dict[str, Path], tmp_path: Path):
    """The generated HLS B mover reads the compressed values and positions and feeds the cores
    the dense tiles (checked with g++ against the simulator), and the whole sequencer runs."""
    from codesign.api import compile as compile_model
    from codesign.codegen.vitis import golden_inputs
    from codesign.hls.check import check_hls
    from codesign.sim.functional import Simulator

    build = compile_model(models["qdq"], synth=False)
    root = build.save(tmp_path / "b")
    tensors = Simulator(build.plan).run_all(golden_inputs(build.plan))
    rows = check_hls(root, build.plan, tensors)
    assert any(r.part.endswith("feed_b") for r in rows)
    bad = [r for r in rows if not (r.compiled and r.matched)]
    assert not bad, bad
