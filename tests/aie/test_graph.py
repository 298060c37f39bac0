"""The generated ADF graph, parsed back from its text, against the plan: the same cores,
cascades, PLIOs (count, width, frequency) and memory-tile buffers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import codesign
from codesign.aie.emit import emit_files
from codesign.boards import load as load_board
from codesign.examples import models
from codesign.examples.attention import attention_core
from codesign.ir.plan import GemmLayer
from codesign.kinds.batched_matmul import BatchedMatMulLayer


def parse_graph(text: str) -> dict:
    """The declarations and connections of an aie/graph.h, by regular expression."""
    g = {
        "kernels": re.findall(r"^\s*adf::kernel (\w+);", text, re.M),
        "plio_in": re.findall(r"^\s*adf::input_plio (\w+);", text, re.M),
        "plio_out": re.findall(r"^\s*adf::output_plio (\w+);", text, re.M),
        "buffers": re.findall(r"^\s*adf::shared_buffer<uint8> (\w+);", text, re.M),
        "plio_create": re.findall(
            r'(\w+) = adf::(?:input|output)_plio::create\("(\w+)", adf::plio_(\d+)_bits, "[^"]+", ([\d.]+)\);',
            text,
        ),
        "cascade": re.findall(
            r"adf::connect<adf::cascade>\((\w+)\.out\[\d+\], (\w+)\.in\[\d+\]\);", text
        ),
        "connect": re.findall(r"adf::connect\((\w+)\.out\[\d+\], (\w+)\.in\[\d+\]\);", text),
        "params": re.findall(
            r"adf::connect<adf::parameter>\((\w+), adf::async\((\w+)\.in\[\d+\]\)\);", text
        ),
        "create": dict(re.findall(r"(\w+) = adf::kernel::create\((\w+)\);", text)),
    }
    return g


def graph_of(build) -> dict:
    files = dict(emit_files(build.plan))
    return parse_graph(files["aie/graph.h"].decode())


def core_xy(name: str) -> tuple[int, int]:
    c, l_ = name.rsplit("_", 2)[1:]
    return int(c), int(l_)


@pytest.mark.parametrize(
    "make, block",
    [
        (lambda p: models.qdq_mlp(p, per_channel=True), "2x8"),
        (lambda p: models.float_mlp(p, dims=(4096, 16, 8)), "1x2"),
        (lambda p: models.qdq_gemm(p, 9, 300, 20), "2x3"),
        (lambda p: models.qdq_gemm(p, 128, 768, 768), "2x8"),
        (lambda p: models.qdq_gemm(p, 1024, 1024, 1024), "2x8"),
        (lambda p: attention_core(p, transpose_out=False), "2x8"),
        (lambda p: attention_core(p, quantize=True, transpose_out=False), "2x4"),
    ],
    ids=[
        "qdq_2x8",
        "bf16_carry_1x2",
        "int8_2x3",
        "reuse_a_panel",
        "reuse_b_resident",
        "attention_bf16_2x8",
        "attention_qdq_2x4",
    ],
)
def test_graph_matches_the_plan(make, block: str, tmp_path: Path) -> None:
    build = codesign.compile(make(tmp_path / "m.onnx"), board="vek280", block=block)
    plan = build.plan
    # every layer on the block: the GEMMs and the batched products (one graph serves them all)
    gemms = [layer for layer in plan.layers if isinstance(layer, GemmLayer | BatchedMatMulLayer)]
    C, L = plan.block.chains, plan.block.cascade
    g = graph_of(build)
    # cores: one per (chain, cascade position), each running the kernel of its position
    assert sorted(core_xy(k) for k in g["kernels"]) == [
        (c, l_) for c in range(C) for l_ in range(L)
    ]
    for k in g["kernels"]:
        _, l_ = core_xy(k)
        want = "only" if L == 1 else "first" if l_ == 0 else "last" if l_ == L - 1 else "middle"
        assert g["create"][k].endswith("_" + want)
    # cascades: core l -> l + 1 inside every chain, nothing else
    assert sorted((core_xy(a), core_xy(b)) for a, b in g["cascade"]) == sorted(
        ((c, l_), (c, l_ + 1)) for c in range(C) for l_ in range(L - 1)
    )
    # PLIOs: the plan's counts, the board's widest PLIO at its PL clock
    # (data streams), plus one 32-bit control stream per chain (rtp_<chain>)
    for s in (x.schedule for x in gemms):
        assert (len(g["plio_in"]), len(g["plio_out"])) == (s.plio_in + C, s.plio_out)
    board = load_board(plan.board)
    widths = {name: (int(w), float(f)) for _, name, w, f in g["plio_create"]}
    mhz = board.pl.default_clock_mhz
    assert {w for n, w in widths.items() if not n.startswith("rtp_")} == {
        (max(board.plio.widths_bits), mhz)
    }
    assert {n: w for n, w in widths.items() if n.startswith("rtp_")} == {
        f"rtp_{c}": (32, mhz) for c in range(C)
    }
    # every B stream feeds its own core (through its resident buffer when the plan holds B);
    # every A stream feeds every chain's core at its position; the last core feeds its chain's C
    edges = {}
    for src, dst in g["connect"]:
        edges.setdefault(src, set()).add(dst)

    def reach(src: str) -> set[str]:
        out = set()
        for d in edges.get(src, ()):
            out |= {d} if d in g["kernels"] else reach(d)
        return out

    for c in range(C):
        for l_ in range(L):
            assert {core_xy(k) for k in reach(f"b_in_{c}_{l_}")} == {(c, l_)}
    for l_ in range(L):
        assert {core_xy(k) for k in reach(f"a_in_{l_}")} == {(c, l_) for c in range(C)}
    for c in range(C):
        assert [core_xy(s) for s, d in g["connect"] if d == f"c_out_{c}"] == [(c, L - 1)]
    # memory-tile buffers: exactly the ones the plan's dataflows and K passes use
    plans = {s.reuse_plan for s in (x.schedule for x in gemms) if s.dataflow != "tempus"}
    want_buffers = set()
    if plans & {"a_panel", "a_resident"}:
        want_buffers |= {f"a_reuse_{l_}" for l_ in range(L)}
    if "b_resident" in plans:
        want_buffers |= {f"b_resident_{c}_{l_}" for c in range(C) for l_ in range(L)}
    if any(x.dtype == "bf16" for x in gemms):
        want_buffers |= {f"carry_{c}" for c in range(C)}
    assert set(g["buffers"]) == want_buffers
    # no run-time parameter from the PS: each chain's control stream reaches every core of it
    assert g["params"] == []
    for c in range(C):
        assert {core_xy(k) for k in reach(f"rtp_in_{c}")} == {(c, l_) for l_ in range(L)}


def test_graph_parser_sees_a_missing_cascade(tmp_path: Path) -> None:
    build = codesign.compile(models.qdq_gemm(tmp_path / "m.onnx", 9, 300, 20), block="2x3")
    text = dict(emit_files(build.plan))["aie/graph.h"].decode()
    broken = text.replace("adf::connect<adf::cascade>(core_1_1.out[0], core_1_2.in[2]);", "")
    assert len(parse_graph(broken)["cascade"]) == len(parse_graph(text)["cascade"]) - 1


@pytest.mark.slow(seconds=60)
def test_each_kernel_group_sends_c_on_plios_of_its_own(tmp_path: Path) -> None:
    """onnxruntime's quantize_dynamic of a BERT layer: int8 GEMMs (acc32 cascades) and bf16
    attention products (accfloat cascades) run on two kernel groups, one set of cores each. An
    output PLIO has one source, so each group's last cores write C PLIOs of their own, and each
    layer's PL untiler reads its group's."""
    pytest.importorskip("transformers")
    from codesign.aie.emit import block_layers, group_of, group_tags
    from codesign.examples.hf_models import HfConfig, export_hf, quantize
    from codesign.hls import pl

    cfg = HfConfig(layers=1, hidden=32, heads=2, ffn=64, seq=16, vocab=64)
    src = export_hf("bert", tmp_path / "b.onnx", cfg, dynamo=True)
    model = quantize(src, tmp_path / "dynamic.onnx", "dynamic", "bert", cfg)
    build = codesign.compile(model, board="vek280", block="2x8", synth=False)
    plan = build.plan
    assert group_tags(plan) == ["acc32", "accfloat"]
    C, L = plan.block.chains, plan.block.cascade
    g = graph_of(build)
    assert len(g["kernels"]) == 2 * C * L
    names = {var: name for var, name, _, _ in g["plio_create"]}
    sources: dict[str, list[str]] = {}
    for src_var, dst in g["connect"]:
        if dst in g["plio_out"]:
            sources.setdefault(names[dst], []).append(src_var)
    want = {f"c_g{gi}_{c}": [f"g{gi}_core_{c}_{L - 1}"] for gi in range(2) for c in range(C)}
    assert sources == want
    assert pl.stream_names(plan)[2] == sorted(want)
    groups = {group_of(plan, layer) for _, layer in block_layers(plan)}
    assert groups == {0, 1}
    for _, layer in block_layers(plan):
        gi = group_of(plan, layer)
        assert pl.c_names(plan, layer) == [f"c_g{gi}_{c}" for c in range(C)]
