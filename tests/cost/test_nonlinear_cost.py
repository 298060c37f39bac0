"""The nonlinear placement model (codesign.cost.nonlinear): what each placement costs, which one
the model picks and why, and that every figure it reads has a source in the board files."""

from __future__ import annotations

import pytest

from codesign.boards import load
from codesign.cost import PlUsage
from codesign.cost.nonlinear import NonlinearWork, choose_placement, estimate_nonlinear
from codesign.errors import OptionError
from codesign.sim.nonlinear import ELEMENTWISE

BLOCK = (2, 8)


def _work(fn: str, elements: int, row: int = 0) -> NonlinearWork:
    return NonlinearWork(
        elements, ELEMENTWISE[fn].ops, elements * 4, elements * 4, row=row, function=fn
    )


@pytest.mark.parametrize("board", ["vek280", "ve2302", "vck190"])
def test_every_nonlinear_figure_has_a_source(board: str) -> None:
    b = load(board)
    for key in b.extra["nonlinear"]:
        assert b.sources[f"nonlinear.{key}"]


def test_small_layers_go_to_the_pl_large_short_functions_to_the_aie() -> None:
    b = load("vek280")
    # a small layer: the AIE's per-layer kernel switch dominates
    best, opts = choose_placement(b, "l", _work("exp", 512), block=BLOCK, kind="nonlinear")
    assert best == "pl" and opts["pl"].time_s < opts["aie"].time_s
    # a large exp (22 fp32 ops per element): 16 cores beat 4 PL lanes
    best, opts = choose_placement(b, "l", _work("exp", 1 << 20), block=BLOCK, kind="nonlinear")
    assert best == "aie" and opts["aie"].bound == "compute"
    # a large GELU (52 ops): emulated fp32 on the AIE-ML is slower than the pipelined PL unit
    best, opts = choose_placement(b, "l", _work("gelu", 1 << 20), block=BLOCK, kind="nonlinear")
    assert best == "pl"


def test_estimates_are_modelled_and_consistent() -> None:
    b = load("vek280")
    w = _work("exp", 1 << 16)
    pl = estimate_nonlinear(b, "l", w, "pl", block=BLOCK, kind="k")
    aie = estimate_nonlinear(b, "l", w, "aie", block=BLOCK, kind="k")
    assert pl.unit == "pl" and aie.unit == "aie"
    assert pl.label == aie.label == "modelled"
    assert pl.resources.pl.dsp == w.ops * 4 and pl.resources.aie_cores == 0
    assert aie.resources.aie_cores == 16 and aie.resources.pl == PlUsage()
    assert pl.time_s == max(pl.breakdown.values())
    assert pl.detail["cycles"] == (1 << 16) // 4 + w.ops * 4
    with pytest.raises(OptionError, match="placement"):
        estimate_nonlinear(b, "l", w, "gpu", block=BLOCK, kind="k")


def test_a_full_pl_sends_new_units_to_the_aie_but_reuses_existing_ones() -> None:
    b = load("ve2302")  # PL capacity known (464 DSP)
    w = _work("gelu", 256)
    best, _ = choose_placement(b, "l", w, block=BLOCK, kind="k")
    assert best == "pl"
    full = PlUsage(lut=0, ff=0, bram=0, uram=0, dsp=400)
    best, opts = choose_placement(b, "l", w, block=BLOCK, kind="k", pl_in_use=full)
    assert best == "aie" and "pl" not in opts
    unit = estimate_nonlinear(b, "l", w, "pl", block=BLOCK, kind="k").resources.pl_block
    best, _ = choose_placement(b, "l", w, block=BLOCK, kind="k", pl_in_use=full, units={unit})
    assert best == "pl"


def test_without_a_block_only_the_pl_is_an_option() -> None:
    b = load("vek280")
    best, opts = choose_placement(b, "l", _work("neg", 64), block=(0, 0), kind="k")
    assert best == "pl" and set(opts) == {"pl"}
