"""Choosing configurations, stream/host layers and whole-model sums."""

import pytest

from codesign.boards import load
from codesign.cost import (
    GemmWorkload,
    PlUsage,
    choose_temporal_config,
    estimate_host_layer,
    estimate_stream_layer,
    gemm_layer,
    require_fit,
    summarize,
)
from codesign.errors import FitError

VE = load("ve2302")


def test_default_choice_beats_tempus_policy_and_fits():
    c = choose_temporal_config(VE, GemmWorkload(1024, 1024, 1024))
    require_fit(VE, c.estimate.resources)
    assert c.gain_over_tempus > 1.5
    assert c.tempus.config.dataflow == "tempus"
    assert c.tempus.config.cores == c.estimate.config.cores


def test_choice_is_deterministic():
    a = choose_temporal_config(VE, GemmWorkload(700, 300, 900, "int8"))
    b = choose_temporal_config(VE, GemmWorkload(700, 300, 900, "int8"))
    assert a.estimate.config == b.estimate.config and a.estimate.time_s == b.estimate.time_s


def test_fixed_parts_are_respected():
    c = choose_temporal_config(
        VE,
        GemmWorkload(1024, 1024, 1024),
        chains=2,
        cascade=8,
        tile=(64, 128, 64),
        dataflow="tempus",
    )
    cfg = c.estimate.config
    assert (cfg.chains, cfg.cascade, cfg.tile_m, cfg.tile_k, cfg.tile_n) == (2, 8, 64, 128, 64)
    assert c.gain_over_tempus == 1.0


def test_nothing_fits_is_a_fit_error():
    with pytest.raises(FitError, match="does not fit ve2302"):
        choose_temporal_config(VE, GemmWorkload(1024, 1024, 1024), chains=8, cascade=8)


def test_stream_layer_is_bytes_over_width_times_clock():
    x = estimate_stream_layer(VE, "gelu", 1 << 20, 1 << 20, from_ddr=False)
    assert x.time_s == pytest.approx((1 << 20) / (16 * 312.5e6))
    assert x.bound == "stream" and x.unit == "pl" and x.label == "modelled"
    y = estimate_stream_layer(VE, "add", 64 << 20, 32 << 20, lanes=8)
    assert y.bound == "ddr"


def test_host_layer_uses_measured_a72_rate():
    h = estimate_host_layer(VE, "topk", 10_970_000_000, 0)
    assert h.time_s == pytest.approx(1.0)
    assert h.bound == "host"


def test_summarize_adds_layers():
    g = gemm_layer("fc1", choose_temporal_config(VE, GemmWorkload(256, 512, 256)).estimate)
    s = estimate_stream_layer(VE, "relu", 256 * 256 * 2, 256 * 256 * 2, pl=PlUsage(lut=500, ff=800))
    m = summarize([g, s])
    assert m.time_s == pytest.approx(g.time_s + s.time_s)
    assert m.energy_j == pytest.approx(g.energy_j + s.energy_j)
    assert m.resources.aie_cores == g.resources.aie_cores
    assert m.resources.pl.lut == g.resources.pl.lut + 500
    assert m.label == "modelled"


def test_vek280_power_is_a_labelled_lower_bound():
    c = choose_temporal_config(load("vek280"), GemmWorkload(512, 512, 512, "int8"))
    p = c.estimate.power
    assert not p.complete and "static" in p.missing
    assert p.total_w > 0
