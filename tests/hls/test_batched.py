"""The PL movers of batched products (QK^T, attention x V; codesign.kinds.batched_matmul): the
A tiler, the B tiler (activation B read in its transposed/strided order -> tempus.b/1 blocks),
the C untiler (the head merge as write order) and the control records match the simulator bit
for bit, the sequencer streams them through the block in layer order, and ``codesign check``
passes whole on the attention core."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import codesign
from codesign.api import load_build
from codesign.codegen.check import check_build
from codesign.codegen.vitis import golden_inputs
from codesign.examples.attention import attention_core
from codesign.hls.check import check_hls
from codesign.kinds.batched_matmul import BatchedMatMulLayer
from codesign.sim.functional import Simulator
from tests.hls.conftest import needs_gxx

pytestmark = [pytest.mark.gxx, needs_gxx]

BATCHED_PARTS = {"pl:tile_a", "pl:tile_b", "pl:control", "pl:untile_c"}

#: attention cores on the block: bf16; uint8 QDQ (both zero points, re-centred); int8 QDQ with
#: a KV length that takes several K passes and N tiles on a 1x2 block
CASES = {
    "bf16": (lambda p: attention_core(p, transpose_out=False), "2x8"),
    "qdq_uint8": (lambda p: attention_core(p, quantize=True, transpose_out=False), "2x8"),
    "qdq_int8_odd": (
        lambda p: attention_core(
            p, quantize=True, activation_type="int8", q_len=9, kv_len=40, transpose_out=False
        ),
        "1x2",
    ),
}

_SAVED: dict[str, tuple[Path, codesign.Build]] = {}


@pytest.fixture(scope="module")
def attention(tmp_path_factory):
    """attention(case) -> (build dir, Build), compiled and saved once per module."""
    root = tmp_path_factory.mktemp("pl-attention")

    def get(case: str) -> tuple[Path, codesign.Build]:
        if case not in _SAVED:
            make, block = CASES[case]
            build = codesign.compile(
                make(root / f"{case}.onnx"), board="vek280", block=block, synth=False
            )
            _SAVED[case] = (build.save(root / case), build)
        return _SAVED[case]

    return get


def _tensors(build: codesign.Build):
    return Simulator(build.plan).run_all(golden_inputs(build.plan))


@pytest.mark.slow(seconds=90)
@pytest.mark.parametrize("case", sorted(CASES))
def test_codesign_check_passes_whole_on_the_attention_core(attention, case):
    root, build = attention(case)
    text = (root / "hls" / "codesign_pl.cpp").read_text()
    assert "#error" not in text
    batched = [g for g in build.plan.layers if isinstance(g, BatchedMatMulLayer)]
    assert len(batched) == 2
    for g in batched:  # the sequencer runs each product's movers as a block step
        assert re.search(rf"\b{re.escape(_ident(build, g))}_run\(arena, a_0,", text)
    rows = check_build(load_build(root))
    bad = [r for r in rows if not (r.compiled and r.matched)]
    assert not bad, bad
    for g in batched:
        parts = {r.part for r in rows if r.layer == g.name}
        assert parts == BATCHED_PARTS | {"aie"}, parts
    assert any(r.layer == "(sequencer)" and r.matched for r in rows)


def _ident(build, g) -> str:
    from codesign.hls.pl import ident

    return ident(build.plan.layers.index(g), g.name)


def _break(root: Path, build, tmp_path: Path, pattern: str, repl: str) -> Path:
    """A copy of the build whose first batched product's mover header has ``pattern`` replaced
    (once) by ``repl``."""
    g = next(x for x in build.plan.layers if isinstance(x, BatchedMatMulLayer))
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    header = copy / "hls" / f"{_ident(build, g)}.h"
    text = header.read_text()
    new, n = re.subn(pattern, repl, text, count=1)
    assert n == 1, pattern
    header.write_text(new)
    return copy


@pytest.mark.parametrize(
    "pattern, repl, parts",
    [
        # the B tiler reads B' along swapped axes (K^T not honoured): its tiles and the column
        # sums of the control records differ
        (
            r"(_b_at\(const u8\* arena, int h, int row, int col\) \{[^}]*?"
            r"static_cast<std::int64_t>\(row\) \* )(\d+)( \+ static_cast<std::int64_t>\(col\) \* )(\d+)",
            r"\g<1>\4\3\2",
            {"tile_b", "control"},
        ),
        # the A tiler forgets the uint8 re-centring (so do the row sums)
        (r"(_a_val[^{]*\{\n  return [^;]*?) - 128;", r"\1;", {"tile_a", "control"}),
        # the control records carry a wrong B zero point
        (
            r"write\(ap_uint<32>\(static_cast<std::uint32_t>\((-?\d+)\)\)\);\n        \+\+w;",
            r"write(ap_uint<32>(static_cast<std::uint32_t>(\1 + 1)));\n        ++w;",
            {"control"},
        ),
        # the C untiler swaps neighbouring output elements
        (r"at \* 4, 4,", "(at ^ 1) * 4, 4,", {"untile_c"}),
    ],
    ids=["b_read_order", "a_recentre", "control_zb", "c_write_order"],
)
def test_a_wrong_mover_is_a_mismatch_of_that_function(attention, tmp_path, pattern, repl, parts):
    root, build = attention("qdq_uint8")
    broken = _break(root, build, tmp_path, pattern, repl)
    g = next(x for x in build.plan.layers if isinstance(x, BatchedMatMulLayer))
    rows = check_hls(broken, build.plan, _tensors(build))
    mine = {r.part: r for r in rows if r.layer == g.name}
    assert all(r.compiled for r in mine.values()), mine
    assert {p for p, r in mine.items() if not r.matched} == {f"pl:{p}" for p in parts}, mine
    seq = next(r for r in rows if r.layer == "(sequencer)")
    assert not seq.matched  # the whole inference sees the broken mover too


def test_a_broken_zero_point_term_in_the_kernel_is_a_mismatch(attention, tmp_path):
    root, build = attention("qdq_uint8")
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    names = {g.name for g in build.plan.layers if isinstance(g, BatchedMatMulLayer)}
    hit = False
    for src in sorted((copy / "aie" / "kernels").glob("gemm*.cc")):
        text = src.read_text()
        if "- zb * rowsum" in text:  # drop the row-sum correction of the batched kernels
            src.write_text(text.replace("acc = aie::add(acc, ra);", "(void)ra;"))
            hit = True
    assert hit
    rows = [r for r in check_build(load_build(copy)) if r.part == "aie"]
    assert all(r.compiled for r in rows)
    assert {r.layer for r in rows if not r.matched} == names


def test_compiling_twice_gives_identical_bytes(tmp_path):
    model = attention_core(tmp_path / "a.onnx", quantize=True, transpose_out=False)
    a = codesign.compile(model, board="vek280", block="2x8", synth=False).save(tmp_path / "a")
    b = codesign.compile(model, board="vek280", block="2x8", synth=False).save(tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.parts[0] in ("hls", "aie") or rel.name == "aie.cfg":
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_a_model_of_only_a_batched_product_gets_the_block_and_passes(tmp_path):
    # no GEMM emits the AIE files here: the batched kind does (one graph, its own kernel)
    import onnx
    from onnx import TensorProto, helper

    q = helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 4, 8, 16])
    k = helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 4, 16, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    node = helper.make_node("MatMul", ["q", "k"], ["y"], name="qk")
    graph = helper.make_graph([node], "qk_only", [q, k], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "qk.onnx")
    build = codesign.compile(tmp_path / "qk.onnx", board="vek280", block="2x8", synth=False)
    assert not build.plan.gemms()
    root = build.save(tmp_path / "b")
    assert (root / "aie" / "graph.h").is_file()
    rows = check_build(load_build(root))
    assert {(r.layer, r.part) for r in rows} >= {("qk", p) for p in BATCHED_PARTS | {"aie"}}
    assert all(r.compiled and r.matched for r in rows), rows


def _qdq_product(path: Path, dtype: str, scale: float) -> Path:
    """y = DQ(Q(q)) @ DQ(Q(k)), per-tensor QDQ of ``dtype`` with nonzero zero points, 2 heads."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = {"int16": (TensorProto.INT16, np.int16), "int8": (TensorProto.INT8, np.int8)}
    _, npd = elem[dtype]
    q = helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2, 5, 24])
    k = helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 2, 24, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 5, 7])
    inits = [
        numpy_helper.from_array(np.array(scale, np.float32), "s"),
        numpy_helper.from_array(np.array(37, npd), "zq"),
        numpy_helper.from_array(np.array(-5, npd), "zk"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["q", "s", "zq"], ["qq"]),
        helper.make_node("DequantizeLinear", ["qq", "s", "zq"], ["qd"]),
        helper.make_node("QuantizeLinear", ["k", "s", "zk"], ["kq"]),
        helper.make_node("DequantizeLinear", ["kq", "s", "zk"], ["kd"]),
        helper.make_node("MatMul", ["qd", "kd"], ["y"], name="qk"),
    ]
    graph = helper.make_graph(nodes, "qdq_product", [q, k], [y], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    return path


def test_an_int16_product_whose_sums_leave_int32_matches_bit_for_bit(tmp_path):
    # int16 operands near full scale: the acc64 sums exceed int32 and the layer's int32 output
    # is their low 32 bits (the simulator's cast); the kernel must not saturate
    import numpy as np

    model = _qdq_product(tmp_path / "m.onnx", "int16", 2e-5)
    root = codesign.compile(model, board="vek280", block="2x8", synth=False).save(tmp_path / "b")
    build = load_build(root)
    (g,) = [x for x in build.plan.layers if isinstance(x, BatchedMatMulLayer)]
    assert g.dtype == "int16" and g.a_zero_point and g.b_zero_point
    env = Simulator(build.plan, root).run_all(golden_inputs(build.plan))
    a = env[g.inputs[0]].astype(np.int64) - g.a_zero_point
    b = env[g.inputs[1]].astype(np.int64) - g.b_zero_point
    assert np.abs(a @ b).max() > 2**31  # the case is the one it claims to be
    rows = [r for r in check_build(build) if r.layer == "qk"]
    assert {r.part for r in rows} == BATCHED_PARTS | {"aie"}
    assert all(r.compiled and r.matched for r in rows), rows
