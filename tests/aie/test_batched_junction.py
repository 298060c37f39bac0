"""The junction of the two halves on x86 for batched activation x activation products (QK^T,
attention x V; :mod:`codesign.kinds.batched_matmul`): the PL A and B tilers' streams (both
operands are activations, read in place through the head split and K^T) feed the AIE kernels
head after head, and the kernels' C buffers feed the PL C untiler (the head merge as its write
order). ``codesign check`` verifies each half alone against streams built from
:mod:`codesign.ir.layouts`; here the halves are joined, PL -> AIE -> PL, on tiles that hold
several native mmul blocks along m, k and n (where the blocked ``tempus.a/1``, ``tempus.b/1``
and ``tempus.c/1`` orders differ from row-major) with several M tiles, N tiles and K passes,
and the output tensor must be the simulator's bit for bit."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import codesign
from codesign.aie import check as aie_check
from codesign.aie.emit import block_layers
from codesign.codegen.vitis import golden_inputs
from codesign.examples.attention import attention_core
from codesign.hls import check as hls_check
from codesign.hls import pl
from codesign.ir.layouts import a_tile_order, c_tile_order
from codesign.ir.plan import Tile
from codesign.kinds.batched_matmul import BatchedMatMulLayer
from codesign.schedulers import tempus
from codesign.sim.functional import Simulator
from tests.aie.test_junction import build_both_halves

pytestmark = [
    pytest.mark.gxx,
    pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++"),
]


def _attention(path: Path, quantize: bool, activations: str = "uint8") -> Path:
    # 2 heads of dim 48, 12 queries against 40 keys: QK^T is 12x48x40 and attention x V
    # 12x40x48 per head, so on the tiles below both have 2 M tiles, 2 or 3 N tiles and 2 K
    # passes, with padding along M, K and N
    return attention_core(
        path,
        heads=2,
        head_dim=48,
        q_len=12,
        kv_len=40,
        quantize=quantize,
        activation_type=activations,
        transpose_out=False,
    )


#: (model, block, forced tile): 2 native blocks along m, k and n (int8 4x8x8, bf16 4x8x4) on
#: 2 chains x 2 cascade positions. "uint8" / "int8": QDQ with uint8 (re-centred to int8) or
#: int8 activations, both zero points non-zero; "bf16": the float model
CASES = {
    "uint8": (lambda p: _attention(p, True), "2x2", Tile(8, 16, 16)),
    "int8": (lambda p: _attention(p, True, "int8"), "2x2", Tile(8, 16, 16)),
    "bf16": (lambda p: _attention(p, False), "2x2", Tile(8, 16, 8)),
}


def _compile(case: str, tmp_path: Path, monkeypatch) -> tuple[Path, codesign.Build]:
    make, block, tile = CASES[case]
    real = tempus.schedule_gemm

    def forced(*args, tile=None, **kwargs):  # every GEMM and batched product on the test's tile
        return real(*args, tile=CASES[case][2], **kwargs)

    monkeypatch.setattr(tempus, "schedule_gemm", forced)
    build = codesign.compile(make(tmp_path / "m.onnx"), board="vek280", block=block, synth=False)
    monkeypatch.undo()
    return build.save(tmp_path / "build"), build


def _heads(streams: dict[str, bytes], heads: int) -> list[dict[str, bytes]]:
    """Cut streams that carry ``heads`` heads one after the other (as the PL movers send them)
    into each head's part."""
    out: list[dict[str, bytes]] = [{} for _ in range(heads)]
    for name, data in streams.items():
        assert len(data) % heads == 0, name
        size = len(data) // heads
        for h in range(heads):
            out[h][name] = data[h * size : (h + 1) * size]
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_pl_tilers_to_aie_kernel_to_pl_untiler(
    case: str, tmp_path: Path, monkeypatch
) -> None:
    root, build = _compile(case, tmp_path, monkeypatch)
    plan = build.plan
    batched = [
        (n, i, g)
        for n, (i, g) in enumerate(block_layers(plan))
        if isinstance(g, BatchedMatMulLayer)
    ]
    assert len(batched) == 2  # QK^T and attention x V
    for _, _, g in batched:
        s = g.schedule
        nm, nk, nn = s.native
        assert s.tile == CASES[case][2] and s.block.chains > 1 and s.block.cascade > 1
        assert s.k_passes > 1 and s.m_tiles > 1 and s.n_tiles > 1 and g.batch > 1
        assert (s.padded_M, s.padded_K, s.padded_N) != (s.M, s.K, s.N)
        # several native blocks along m, k and n: the A, B (k x n blocks) and C tile orders
        # are not row-major, so a row-major tiler or untiler would differ
        assert s.tile.m > nm and s.tile.k > nk and s.tile.n > nn
        m, k, n = s.tile.m, s.tile.k, s.tile.n
        assert not np.array_equal(a_tile_order(np.arange(m * k).reshape(m, k), s), np.arange(m * k))
        assert not np.array_equal(c_tile_order(np.arange(m * n).reshape(m, n), s), np.arange(m * n))
        if case != "bf16":
            assert g.a_zero_point and g.b_zero_point
    # the operands are read through the head split and K^T, the output written as the head merge
    assert any(g.a_perm for _, _, g in batched) and all(g.b_perm for _, _, g in batched)
    assert any(g.out_perm for _, _, g in batched)
    tensors = Simulator(plan).run_all(golden_inputs(plan))
    sim = Simulator(plan, root)
    with tempfile.TemporaryDirectory(prefix="bjunction-", dir=tmp_path) as tmp:
        work = Path(tmp)
        arena = build_both_halves(plan, root, work, tensors)
        regions, _ = pl.arena(plan)
        a_names, b_names, _ = pl.stream_names(plan)
        for n, i, g in batched:
            p = pl.ident(i, g.name)
            arena_file, pl_out = work / f"{p}.arena", work / f"{p}.pl"
            arena_file.write_bytes(arena)
            pl_out.mkdir()
            # PL A and B tilers -> every head's A and B streams, read from the arena in place
            for op in ("tile_a", "tile_b", "control"):
                assert hls_check._run(work / "pl", op, p, arena_file, pl_out) is None
            sent = {x: (pl_out / f"{x}.bin").read_bytes() for x in a_names + b_names}
            # -> the AIE kernels head by head (buffer ports, cascades, K passes, carries); the
            # control records the harness forms are the ones the PL sends (checked below)
            aie_out = work / f"{p}.aie"
            row = aie_check._run_batched(
                sim, work / "aie", aie_out, n, g, tensors, streams=_heads(sent, g.batch)
            )
            assert row.compiled and row.matched, row
            # -> every head's C buffers, as the kernels sent them, read by the PL C untiler
            # (the AIE harness names chain c's file c_<c>; the PL reads the layer's group's PLIOs)
            for c, name in enumerate(pl.c_names(plan, g)):
                heads = [(aie_out / f"h{h}" / f"c_{c}.bin").read_bytes() for h in range(g.batch)]
                (pl_out / f"{name}.bin").write_bytes(b"".join(heads))
            untiled = hls_check._check_untile_c(
                work / "pl", p, arena_file, pl_out, g.name, arena, regions[g.outputs[0]]
            )
            assert untiled.matched, untiled  # the simulator's output tensor, bit for bit
            # the streams the join carried are the ones codesign check expects of each half
            want = hls_check.expected_batched(plan, g, i, tensors)
            for x in a_names + b_names + pl.rtp_names(plan):
                assert (pl_out / f"{x}.bin").read_bytes() == want[x], x
