"""Each kernel group of the temporal block is a block of cores of its own (a cascade carries one
accumulator type): the whole design's AIE usage counts every group's block."""

from __future__ import annotations

from codesign.cost.layers import summarize
from codesign.cost.resources import ResourceUsage


def _usage(group: str, cores: int = 16) -> ResourceUsage:
    return ResourceUsage(
        aie_cores=cores,
        memory_tiles=2,
        plio_in=24,
        plio_out=2,
        core_buffer_bytes=4096,
        aie_data_bytes=4096 * cores,
        aie_groups=(group,),
    )


def test_one_group_counts_one_block() -> None:
    u = _usage("acc32").shared_with(_usage("acc32", 8))
    assert u.whole_design() == u
    assert (u.aie_cores, u.memory_tiles, u.plio_out) == (16, 2, 2)


def test_two_groups_count_two_blocks() -> None:
    u = _usage("acc32").shared_with(_usage("accfloat")).shared_with(_usage("acc32"))
    assert u.aie_groups == ("acc32", "accfloat")
    d = u.whole_design()
    assert (d.aie_cores, d.memory_tiles, d.plio_out, d.aie_data_bytes) == (32, 4, 4, 2 * 16 * 4096)
    # the A and B PLIOs are shared by the groups; a core's buffer is per core
    assert (d.plio_in, d.core_buffer_bytes) == (24, 4096)


def test_the_model_summary_counts_every_group() -> None:
    from codesign.cost.layers import LayerEstimate
    from codesign.cost.power import PowerEstimate

    def layer(name: str, group: str) -> LayerEstimate:
        return LayerEstimate(
            name=name,
            kind="gemm",
            unit="aie",
            time_s=1e-6,
            ops=1,
            ddr_bytes=1,
            bound="compute",
            power=PowerEstimate({"aie": 1.0}),
            breakdown={"compute": 1e-6},
            resources=_usage(group),
        )

    m = summarize([layer("a", "acc32"), layer("b", "accfloat"), layer("c", "acc32")])
    assert m.resources.aie_cores == 32
