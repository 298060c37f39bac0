"""The PL sequencer step of a nonlinear layer on the AIE block (codesign.hls.aie_nonlinear): it
streams the rows, parameters and control records the contract of codesign/aie/nonlinear.py
names and writes the results back; the sequencer check sees a wrong control word."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import codesign
from codesign.codegen.check import check_build
from codesign.hls import aie_nonlinear, pl
from tests.aie.test_nonlinear import _force_aie, _model

pytestmark = [
    pytest.mark.gxx,
    pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++"),
]


def test_the_control_records_name_the_layer_iteration_and_chain(tmp_path: Path) -> None:
    build = codesign.compile(_model(tmp_path / "m.onnx", 40, 512, "layernorm"), block="2x8")
    _force_aie(build)  # the cost model puts it on the PL (its rows would pad the GEMMs' tiles)
    plan = build.plan
    (ctx,) = aie_nonlinear.contexts(plan).values()
    assert plan.layers[ctx["index"]].name == "fn_layernorm"
    assert ctx["iterations"] * 16 * ctx["q"] >= 40 > (ctx["iterations"] - 1) * 16 * ctx["q"]
    x = np.zeros((40, 512), np.float32)
    y = np.zeros((40, 512), np.float32)
    params = [np.ones(512, np.float32), np.zeros(512, np.float32)]
    streams = aie_nonlinear.expected_streams(plan, ctx, x, y, params)
    words = 4 + pl.epilogue_words(plan)
    for c, name in enumerate(pl.rtp_names(plan)):
        rec = np.frombuffer(streams[name], "<u4").reshape(ctx["iterations"], words)
        assert (rec[:, 0] == ctx["index"]).all() and (rec[:, 2] == ctx["iterations"]).all()
        assert list(rec[:, 1]) == list(range(ctx["iterations"])) and (rec[:, 3] == c).all()
        assert not rec[:, 4:].any()
    bits = pl.beat_bits(plan)
    per_tile = -(-2 * 512 * 4 // (bits // 8)) * (bits // 8)
    assert len(streams[pl.b_name(1, 3)]) == ctx["iterations"] * per_tile  # gamma and beta


def test_the_sequencer_streams_the_layer_and_a_wrong_chain_word_is_caught(tmp_path: Path) -> None:
    model = _model(tmp_path / "m.onnx", 16, 512, "layernorm")
    build = codesign.compile(model, board="vek280", block="2x8")
    _force_aie(build)  # the cost model puts it on the PL (its rows would pad the GEMMs' tiles)
    root = build.save(tmp_path / "b")
    (seq,) = [r for r in check_build(codesign.load_build(root)) if r.part == "pl:sequencer"]
    assert seq.compiled and seq.matched, seq
    (step,) = (root / "hls").glob("l*_fn_layernorm.h")
    text = step.read_text()
    bad = text.replace("    rtp_1.write(1);\n    for (int w", "    rtp_1.write(0);\n    for (int w")
    assert bad != text
    step.write_text(bad)
    (seq,) = [r for r in check_build(codesign.load_build(root)) if r.part == "pl:sequencer"]
    assert seq.compiled and not seq.matched and "rtp_1" in seq.detail, seq
