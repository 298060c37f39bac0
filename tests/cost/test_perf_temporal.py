"""Physics of the temporal model: stages, bounds, dataflows, errors and invariants."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.boards import load
from codesign.cost import (
    GemmWorkload,
    PlUsage,
    TemporalConfig,
    capacities,
    estimate_temporal_gemm,
    require_fit,
)
from codesign.errors import BoardError, FitError, OptionError

VE = load("ve2302")
TEMPUS = TemporalConfig(2, 8, 64, 128, 64, dataflow="tempus", pl_clock_mhz=312.5)


def test_every_estimate_is_labelled_modelled():
    e = estimate_temporal_gemm(VE, GemmWorkload(1024, 1024, 1024), TEMPUS)
    assert e.label == "modelled" and e.modelled
    assert e.power.total_w > 0 and e.cycles == round(e.time_s * 1e9)


def test_small_gemm_is_launch_bound():
    e = estimate_temporal_gemm(VE, GemmWorkload(64, 64, 64), TemporalConfig(2, 8, 32, 8, 16))
    assert e.bound == "launch"


def test_reuse_cuts_ddr_traffic_and_time():
    w = GemmWorkload(1024, 1024, 1024)
    t = estimate_temporal_gemm(VE, w, TEMPUS)
    r = estimate_temporal_gemm(VE, w, replace(TEMPUS, dataflow="reuse"))
    assert r.plan.name == "b_resident"  # B (2 MB) fits the 17 memory tiles
    assert r.ddr_bytes == w.a_bytes + w.b_bytes + w.c_bytes
    assert r.ddr_bytes < t.ddr_bytes and r.time_s < t.time_s
    assert r.resources.memory_tiles >= 4  # 24 streams / 6 MM2S channels


def test_reuse_without_on_chip_storage_falls_back_and_says_so():
    bare = replace(
        VE,
        memory_tiles=replace(VE.memory_tiles, count=0),
        pl=replace(VE.pl, uram=None),
    )
    e = estimate_temporal_gemm(
        bare, GemmWorkload(1024, 1024, 1024), replace(TEMPUS, dataflow="reuse")
    )
    assert e.plan.name == "tempus"
    assert any("reuse infeasible" in n for n in e.notes)


def test_board_without_perf_figures_is_a_board_error():
    # vck190 has a sourced DDR bandwidth but none of the fitted perf figures the model needs
    with pytest.raises(BoardError, match=r"vck190\.json: perf\.\w+ must be set"):
        estimate_temporal_gemm(load("vck190"), GemmWorkload(256, 256, 256), TEMPUS)


def test_named_reuse_plans_order_traffic():
    w = GemmWorkload(2048, 2048, 2048)
    ddr = {
        p: estimate_temporal_gemm(VE, w, replace(TEMPUS, dataflow="reuse", reuse_plan=p)).ddr_bytes
        for p in ("a_panel", "b_panel")
    }
    tempus = estimate_temporal_gemm(VE, w, TEMPUS).ddr_bytes
    assert all(v < tempus for v in ddr.values())


def test_bad_options_are_option_errors():
    w = GemmWorkload(128, 128, 128)
    with pytest.raises(OptionError, match="dtype"):
        estimate_temporal_gemm(VE, GemmWorkload(128, 128, 128, "fp32"), TEMPUS)
    with pytest.raises(OptionError, match="plio_bits"):
        estimate_temporal_gemm(VE, w, replace(TEMPUS, plio_bits=96))
    with pytest.raises(OptionError, match="PL clock"):
        estimate_temporal_gemm(VE, w, replace(TEMPUS, pl_clock_mhz=600))
    with pytest.raises(OptionError, match="dataflow"):
        TemporalConfig(dataflow="magic")
    with pytest.raises(OptionError, match="M must be"):
        GemmWorkload(0, 1, 1)


def test_too_big_a_block_does_not_fit_and_says_by_how_much():
    e = estimate_temporal_gemm(VE, GemmWorkload(1024, 1024, 1024), replace(TEMPUS, chains=5))
    with pytest.raises(FitError, match=r"AIE cores 40 > 34 \(over by 6\)"):
        require_fit(VE, e.resources)


def test_pl_figures_from_caller_are_checked():
    e = estimate_temporal_gemm(
        VE, GemmWorkload(256, 256, 256), TEMPUS, pl=PlUsage(lut=200_000, bram=10, source="test")
    )
    rows = {r.resource: r for r in capacities(VE, e.resources)}
    assert rows["PL LUT"].over == 200_000 - 150_272
    with pytest.raises(FitError, match="PL LUT"):
        require_fit(VE, e.resources)


dims = st.integers(min_value=16, max_value=2048)


@settings(max_examples=60, deadline=None)
@given(M=dims, K=dims, N=dims, flow=st.sampled_from(["tempus", "reuse"]))
def test_invariants(M, K, N, flow):
    w = GemmWorkload(M, K, N)
    e = estimate_temporal_gemm(VE, w, replace(TEMPUS, dataflow=flow))
    peak = TEMPUS.cores * VE.aie.macs_per_cycle["int16"] * 2 * VE.aie.clock_mhz * 1e6
    assert e.gops * 1e9 <= peak
    assert e.time_s >= e.critical_path["launch"]
    assert e.time_s == pytest.approx(sum(e.critical_path.values()))
    assert e.ddr_bytes >= w.a_bytes + w.b_bytes + w.c_bytes
    assert e.bound in ("compute", "cascade", "plio", "ddr", "launch")


@settings(max_examples=30, deadline=None)
@given(K=st.integers(min_value=64, max_value=4096))
def test_time_grows_with_k(K):
    a = estimate_temporal_gemm(VE, GemmWorkload(512, K, 512), TEMPUS)
    b = estimate_temporal_gemm(VE, GemmWorkload(512, K + 1024, 512), TEMPUS)
    assert b.time_s > a.time_s


def test_memory_tiles_are_placed_per_column_with_a_margin():
    """Issue 9 item 4: 2048^3 b_resident on ve2302 filled all 17 memory tiles to 100 % although
    the 2x8 block spans 8 columns; it now needs more than the 10 tiles those columns reach."""
    from codesign.cost.dataflow import block_columns, place_in_memory_tiles

    b = load("ve2302")
    assert block_columns(b, 16) == 8
    e = estimate_temporal_gemm(
        b,
        GemmWorkload(2048, 2048, 2048, "int16"),
        TemporalConfig(2, 8, 64, 128, 64, dataflow="reuse", reuse_plan="b_resident"),
    )
    assert e.plan.name == "tempus" and "column" in e.notes[0]
    ok = estimate_temporal_gemm(
        b,
        GemmWorkload(1024, 1024, 1024, "int16"),
        TemporalConfig(2, 8, 64, 128, 64, dataflow="reuse", reuse_plan="b_resident"),
    )
    assert ok.plan.name == "b_resident" and ok.plan.memory_tiles <= 10
    # every reachable tile stays within the margin, and the neighbours of the block are used last
    p = place_in_memory_tiles(b, 16, 4_000_000, 16)
    assert p.feasible and max(p.per_tile) <= 0.9 * 512 * 1024 and len(p.per_tile) == 10
    assert not place_in_memory_tiles(b, 16, 10 * 512 * 1024, 16).feasible
