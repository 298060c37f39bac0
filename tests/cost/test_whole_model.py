"""Whole-model execution: one launch per inference, costs per inference / layer / tile, kernel
tile variants, and the per-launch figure (Tempus's host flow) beside it. Every figure modelled."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codesign.boards import load
from codesign.cost import GemmWorkload, gemm_layer
from codesign.cost.calibration import TEMPUS_PL_USAGE, tempus_setup, time_rows
from codesign.cost.execution import PER_LAUNCH_LABEL, reconfig_s, stage_run, whole_model
from codesign.cost.params import perf_params
from codesign.cost.reference import TEMPUS_POINTS
from codesign.cost.temporal import estimate_temporal_gemm
from codesign.cost.tiles import search_tile
from codesign.cost.variants import _best_subset, choose_variants, ports_of, variant_time
from codesign.ir.plan import Tile, from_json, to_json
from codesign.schedulers.planner import plan as make_plan


@pytest.fixture(scope="module")
def vek():
    return load("vek280")


def _est(board, M, K, N, dtype):
    w = GemmWorkload(M, K, N, dtype)
    return search_tile(board, w, 2, 8, plio_bits=128).estimate


def test_launch_is_paid_once_per_inference(vek):
    shapes = [(128, 768, 768), (128, 768, 3072), (128, 3072, 768)]
    layers = [gemm_layer(f"g{i}", _est(vek, *s, "int8")) for i, s in enumerate(shapes * 4)]
    wm = whole_model(vek, layers)
    p = perf_params(vek)
    launch = p.fixed_overhead_s
    assert wm.launches == 1 and wm.launch_s == launch
    # per layer: reconfiguration + fill + tiles; per tile: the slowest stage
    for x, s in zip(layers, wm.stages, strict=True):
        assert s.reconfig_s == reconfig_s(vek) > 0
        assert s.tiles == x.detail["iterations"]
        assert s.time_s == pytest.approx(x.time_s - launch + s.reconfig_s)
        assert s.weight_bytes == x.detail["K"] * x.detail["N"]  # int8 weights
    assert wm.time_s == pytest.approx(launch + sum(s.time_s for s in wm.stages))
    # Tempus's host flow: each GEMM its own graph run, so n launches
    assert wm.per_launch_time_s == pytest.approx(sum(x.time_s for x in layers))
    n = len(layers)
    saved = (n - 1) * launch - n * reconfig_s(vek)
    assert wm.per_launch_time_s - wm.time_s == pytest.approx(saved)
    assert wm.speedup > 1
    # the views carry no launch of their own
    assert all(v.critical_path["launch"] == 0 for v in wm.views)
    assert PER_LAUNCH_LABEL == "Tempus's host flow: one launch per GEMM"


def test_reconfig_cost_is_a_labelled_assumption_in_the_board_file(vek):
    for name in ("vek280", "ve2302"):
        src = load(name).source("perf.layer_reconfig_s")
        assert "assumption" in src and "not measured" in src


def test_calibration_points_are_compared_under_the_per_launch_flow():
    """Tempus measured one graph run per GEMM: its calibration rows stay per-launch, and a
    one-GEMM model's per-launch figure is exactly the calibrated estimate."""
    ve = load("ve2302")
    rows = {r.name: r for r in time_rows(ve, holdouts=False)}
    for pt in TEMPUS_POINTS:
        w, c = tempus_setup(pt)
        e = estimate_temporal_gemm(ve, w, c, pl=TEMPUS_PL_USAGE)
        wm = whole_model(ve, [gemm_layer(pt.name, e)])
        assert wm.per_launch_time_s * 1e3 == pytest.approx(rows[pt.name].modelled)
        # inside a model the same GEMM pays its reconfiguration instead of a launch
        assert wm.time_s == pytest.approx(e.time_s + reconfig_s(ve))


def test_stage_run_of_a_stream_layer_has_no_reconfiguration(vek):
    from codesign.cost import estimate_stream_layer

    s = stage_run(vek, estimate_stream_layer(vek, "v", 4096, 4096))
    assert s.reconfig_s == 0 and s.weight_bytes == 0 and s.tiles == 1


# --- kernel tile variants ------------------------------------------------------------------


def _own_tile(board, w):
    e = search_tile(board, w, 2, 8, plio_bits=128).estimate
    return (e.config.tile_m, e.config.tile_k, e.config.tile_n)


MIXED = [
    GemmWorkload(16, 64, 256, "int8"),
    GemmWorkload(16, 256, 64, "int8"),
    GemmWorkload(128, 768, 768, "int8"),
    GemmWorkload(128, 3072, 768, "int8"),
    GemmWorkload(8, 40, 24, "int8"),
]


def test_layers_with_different_tiles_share_at_most_v_variants(vek):
    own = {_own_tile(vek, w) for w in MIXED}
    assert len(own) >= 3, "the test needs layers that pick different tiles on their own"
    times = {}
    for v in (1, 2, len(own)):
        ch = choose_variants(vek, MIXED, 2, 8, max_variants=v)
        assert len(ch.variants) <= v
        assert {ch.tile_for(w) for w in MIXED} <= {t for _, t in ch.variants}
        # the choice's time is what each GEMM costs in the graph of the chosen variants (its
        # tiles padded to that graph's ports), as the plan's estimate streams them
        assert ch.ports == ports_of(vek, ch.variants)
        in_graph = sum(variant_time(vek, w, 2, 8, ch.tile_for(w), ch.ports) for w in MIXED)
        assert ch.time_s == pytest.approx(in_graph)
        # never worse than any single variant shared by every layer (the candidates: each
        # layer's own tile), in that variant's own graph
        for t in {ch.tile_for(w) for w in MIXED} | {Tile(*t) for t in own}:
            ports = ports_of(vek, [("int8", t)])
            shared = sum(variant_time(vek, w, 2, 8, t, ports) for w in MIXED)
            assert ch.time_s <= shared * (1 + 1e-12)
        assert ch.time_s >= ch.own_time_s * (1 - 1e-12)
        times[v] = ch.time_s
    # more variants allowed never costs more (every smaller set is among the subsets searched)
    assert times[len(own)] <= times[2] * (1 + 1e-12) <= times[1] * (1 + 1e-12) ** 2


def test_variants_are_per_dtype(vek):
    ws = [GemmWorkload(64, 256, 256, "int8"), GemmWorkload(64, 256, 256, "bf16")]
    ch = choose_variants(vek, ws, 2, 8, max_variants=1)
    assert sorted(d for d, _ in ch.variants) == ["bf16", "int8"]


def test_greedy_never_worse_than_one_shared_variant(monkeypatch):
    import codesign.cost.variants as variants

    rng = np.random.default_rng(0)
    cost = rng.uniform(1, 10, size=(9, 7)).tolist()
    counts = [1, 3, 1, 2, 1, 1, 5, 1, 1]
    time = lambda i, j, sub: cost[i][j]  # noqa: E731  (a graph whose ports do not matter)
    exact, ex = _best_subset(time, counts, 7, 3)
    assert ex
    monkeypatch.setattr(variants, "EXHAUSTIVE_SUBSETS", 0)
    greedy, ex = _best_subset(time, counts, 7, 3)
    assert not ex and len(greedy) <= 3
    cover = variants._cover
    best_single = min(cover(time, counts, [j]) for j in range(7))
    assert cover(time, counts, greedy) <= best_single
    assert cover(time, counts, exact) <= cover(time, counts, greedy)


def test_max_variants_must_be_positive(vek):
    with pytest.raises(ValueError):
        choose_variants(vek, MIXED[:1], 2, 8, max_variants=0)


# --- the plan records it -------------------------------------------------------------------


def _kg(path):
    from codesign.frontend import import_model
    from codesign.passes.pipeline import to_hardware

    kg = import_model(path)
    to_hardware(kg, source=str(path))
    return kg


@pytest.fixture(scope="module")
def ffn(tmp_path_factory):
    from codesign.examples import models

    return models.ffn_block(tmp_path_factory.mktemp("ffn") / "ffn.onnx")


def test_plan_records_execution_and_variants(vek, ffn):
    from codesign.ir.plan import Block
    from codesign.report.plan_report import plan_report
    from codesign.sim.functional import Simulator

    free = make_plan(_kg(ffn), vek, Block(2, 8), max_variants=8)
    one = make_plan(_kg(ffn), vek, Block(2, 8), max_variants=1)
    # the demo FFN's two GEMMs pick different tiles on their own; in one graph the padding to
    # the larger tile's ports makes one shared tile cheaper, whatever the limit
    assert (
        len(
            {
                _own_tile(vek, GemmWorkload(g.schedule.M, g.schedule.K, g.schedule.N, g.dtype))
                for g in free.gemms()
            }
        )
        == 2
    )
    assert len({g.schedule.tile for g in one.gemms()}) == 1
    for p in (free, one):
        ex = p.execution
        assert ex.mode == "whole-model" and ex.launches == 1
        assert len(ex.variants) == len({(g.dtype, g.schedule.tile) for g in p.gemms()})
        assert len(ex.variants) <= ex.max_variants
        gemm_runs = [r for r in ex.layers if r.unit == "aie"]
        assert [r.layer for r in gemm_runs] == [g.name for g in p.gemms()]
        for r, g in zip(gemm_runs, p.gemms(), strict=True):
            assert ex.variants[r.variant].tile == g.schedule.tile
            assert r.tiles == g.schedule.graph_iterations
            assert r.reconfig_cycles > 0 and r.launch_cycles == ex.launch_cycles
        assert ex.cycles < ex.per_launch_cycles
        total = ex.launch_cycles + sum(
            r.reconfig_cycles + r.fill_cycles + r.tiles * r.tile_cycles for r in ex.layers
        )
        assert math.isclose(ex.cycles, total, rel_tol=1e-3)
        # the report says the same figure as the plan
        rep = plan_report(p, vek)
        assert rep["totals"]["time_s"] * ex.aie_clock_mhz * 1e6 == pytest.approx(ex.cycles, abs=1)
        # the JSON keeps it
        assert from_json(to_json(p)).execution == ex
    # One graph serves both layers: its buffer ports are sized for the larger tile and the
    # other layer would stream padded ports; the variant choice sees that padding
    # (codesign.cost.variants), so here it shares one tile and nothing is padded. One variant
    # computes the same numbers.
    padding = {
        r["name"]: r["plio_padding_bytes"]
        for r in plan_report(free, vek)["layers"]
        if "plio_padding_bytes" in r
    }
    assert padding == {g.name: 0 for g in free.gemms()}, padding
    x = {
        t.name: np.random.default_rng(1).standard_normal(t.shape).astype(np.float32)
        for t in free.inputs
    }
    a, b = Simulator(free).run(x), Simulator(one).run(x)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_a_schedule_without_execution_still_reads(vek, ffn):
    import json

    from codesign.ir.plan import Block
    from codesign.report.plan_report import plan_report

    p = make_plan(_kg(ffn), vek, Block(2, 8))
    data = json.loads(to_json(p))
    del data["execution"]
    old = from_json(json.dumps(data))
    assert old.execution is None
    rep = plan_report(old, vek)  # the report recomputes it from the cost model
    assert rep["execution"]["launches_per_inference"] == 1
    assert rep["totals"]["time_s"] == pytest.approx(plan_report(p, vek)["totals"]["time_s"])
