"""The junction of the two halves on x86: the PL A tiler's streams feed the AIE kernels and the
kernels' C buffers feed the PL C untiler, for GEMMs whose tile holds several native mmul blocks
along m, k and n (where a row-major tile and the kernels' ``tempus.a/1`` / ``tempus.c/1``
blocks differ). ``codesign check`` verifies each half alone against streams built from
:mod:`codesign.ir.layouts`; here the halves are joined, PL -> AIE -> PL, and the result must be
the simulator's bit for bit."""

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
from codesign.examples import models
from codesign.hls import check as hls_check
from codesign.hls import pl
from codesign.ir.layouts import a_tile_order, c_tile_order
from codesign.ir.plan import GemmLayer, Tile
from codesign.schedulers import tempus
from codesign.sim.functional import Simulator

pytestmark = [
    pytest.mark.gxx,
    pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++"),
]

#: (model, block, forced tile): 2 native blocks along m, k and n (int8 4x8x8, bf16 4x8x4),
#: several K passes, N and M tiles with padding
CASES = {
    "int8": (lambda p: models.qdq_gemm(p, 12, 64, 40, per_channel=True), "1x2", Tile(8, 16, 16)),
    "bf16": (lambda p: models.float_mlp(p, dims=(64, 40, 16), batch=12), "1x2", Tile(8, 16, 8)),
}


def build_both_halves(plan, root: Path, work: Path, tensors: dict) -> bytes:
    """Compile the build's PL movers (the x86 harness of codesign check, ``work/pl``) and its
    AIE kernels with the x86 graph harness (``work/aie``); return the PL arena holding
    ``tensors``."""
    hls_dir, aie_dir = root / "hls", root / "aie"
    # the PL half: the build's movers in the x86 harness of codesign check
    (work / "pl.cpp").write_text(hls_check._harness(plan, hls_dir))
    assert hls_check.compile_cpp(work / "pl.cpp", work / "pl", hls_dir) is None
    # the AIE half: the build's kernels in the x86 graph harness
    objects, failures = aie_check.compile_kernels(aie_dir, work)
    assert not failures, failures
    ok, msg = aie_check._link_harness(work, aie_dir, objects, "aie", aie_check.harness_source(plan))
    assert ok, msg
    return hls_check.arena_bytes(root, plan, tensors)


def _compile(case: str, tmp_path: Path, monkeypatch) -> tuple[Path, codesign.Build]:
    make, block, tile = CASES[case]
    real = tempus.schedule_gemm

    def forced(*args, tile=None, **kwargs):  # every GEMM on the test's tile
        return real(*args, tile=CASES[case][2], **kwargs)

    monkeypatch.setattr(tempus, "schedule_gemm", forced)
    build = codesign.compile(make(tmp_path / "m.onnx"), board="vek280", block=block, synth=False)
    monkeypatch.undo()
    return build.save(tmp_path / "build"), build


@pytest.mark.parametrize("case", sorted(CASES))
def test_pl_tiler_to_aie_kernel_to_pl_untiler(case: str, tmp_path: Path, monkeypatch) -> None:
    root, build = _compile(case, tmp_path, monkeypatch)
    plan = build.plan
    layers = block_layers(plan)
    assert layers and all(isinstance(g, GemmLayer) for _, g in layers)
    for _, g in layers:
        s = g.schedule
        nm, nk, nn = s.native
        assert s.tile == CASES[case][2] and s.k_passes > 1
        assert s.tile.m > nm and s.tile.k > nk and s.tile.n > nn
        # here the blocked orders are not the row-major one: a row-major tiler would differ
        m, k, n = s.tile.m, s.tile.k, s.tile.n
        assert not np.array_equal(a_tile_order(np.arange(m * k).reshape(m, k), s), np.arange(m * k))
        assert not np.array_equal(c_tile_order(np.arange(m * n).reshape(m, n), s), np.arange(m * n))
    tensors = Simulator(plan).run_all(golden_inputs(plan))
    sim = Simulator(plan, root)
    with tempfile.TemporaryDirectory(prefix="junction-", dir=tmp_path) as tmp:
        work = Path(tmp)
        arena = build_both_halves(plan, root, work, tensors)
        regions, _ = pl.arena(plan)
        for n, (i, g) in enumerate(layers):
            p = pl.ident(i, g.name)
            arena_file, pl_out = work / f"{p}.arena", work / f"{p}.pl"
            arena_file.write_bytes(arena)
            pl_out.mkdir()
            # PL A tiler -> its A streams, beat for beat what the AIE check feeds the kernels
            assert hls_check._run(work / "pl", "tile_a", p, arena_file, pl_out) is None
            a_names = [pl.a_name(l) for l in range(g.schedule.block.cascade)]  # noqa: E741
            sent = {a: (pl_out / f"{a}.bin").read_bytes() for a in a_names}
            assert sent == hls_check.expected_a(plan, g, np.asarray(tensors[g.inputs[0]]))
            # -> the AIE kernels (through the graph's buffer ports, cascades and K passes)
            aie_out = work / f"{p}.aie"
            row = aie_check._run_layer(sim, work / "aie", aie_out, n, g, tensors, a_streams=sent)
            assert row.compiled and row.matched, row
            # -> the C buffers the kernels sent, read by the PL C untiler into the arena
            for c in range(g.schedule.block.chains):
                shutil.copy(aie_out / f"{pl.c_name(c)}.bin", pl_out / f"{pl.c_name(c)}.bin")
            untiled = hls_check._check_untile_c(
                work / "pl", p, arena_file, pl_out, g.name, arena, regions[g.outputs[0]]
            )
            assert untiled.matched, untiled  # the simulator's output, bit for bit
