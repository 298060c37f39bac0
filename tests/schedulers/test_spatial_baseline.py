"""The spatial baseline, with one system efficiency per dtype fitted on the six published VCK190
points (REFERENCES s4), lies within 20% of them: a fit, not an independent reproduction."""

import pytest

from codesign.boards import load
from codesign.cost import GemmWorkload
from codesign.schedulers.spatial import fit_system_efficiency, map_spatial, published_rows


@pytest.fixture(scope="module")
def rows():
    return published_rows()


def test_published_points_within_20_percent(rows):
    assert len(rows) == 6
    for r in rows:
        assert abs(r.error) <= 0.20, (r.point.work, r.point.dtype, r.modelled_tops, r.point.tops)
        assert r.estimate.cores == r.point.cores
        assert r.estimate.label == "modelled"


def test_board_file_holds_a_fresh_fit():
    fit = fit_system_efficiency()
    assert load("vck190").extra["spatial"]["system_efficiency"] == pytest.approx(fit, abs=1e-3)


def test_cores_grow_with_the_matrix_and_cap_at_the_array():
    ve = load("ve2302")
    small = map_spatial(ve, GemmWorkload(64, 64, 64))
    big = map_spatial(ve, GemmWorkload(2048, 2048, 2048))
    assert small.cores < big.cores == ve.aie.tiles
    assert any("capped" in n for n in big.notes)
    assert big.power_w and big.gops_per_w
