"""The cocotb benches of every RTL block, run through cocotb_tools.runner.

Default run: every block with its default parameters on the chosen simulator (Icarus unless
``CODESIGN_SIM=verilator``) with 10,000 random transactions plus the directed cases and the
throughput check; further parameter sets with fewer transactions; and the requantiser on
Verilator whatever the chosen simulator is.
"""

from __future__ import annotations

import pytest

from codesign.rtl import BlockSpec
from codesign.rtl.bench.runner import DEFAULT_TRANSACTIONS, BenchResult, run_bench
from codesign.sim.numerics import ROUNDING_MODES

BLOCK_NAMES = ("requantizer", "broadcaster", "mwq_decoder", "sparse_expander")


def check(result: BenchResult, *, transactions: int) -> None:
    assert result.passed, result.summary()
    names = {t.name for t in result.tests}
    assert names == {"random_traffic", "directed", "throughput"}, names
    random = next(t for t in result.tests if t.name == "random_traffic")
    assert random.transactions >= transactions
    assert result.beats_per_cycle == 1.0


@pytest.mark.parametrize("block", BLOCK_NAMES)
def test_block_default_parameters(block: str, sim: str, tmp_path) -> None:
    result = run_bench(BlockSpec.of(block), sim=sim, work_dir=tmp_path)
    check(result, transactions=DEFAULT_TRANSACTIONS)


OTHER_PARAMETERS = [
    # per-tensor build (no parameter memory), 16-bit output, narrower accumulators
    BlockSpec.of("requantizer", lanes=2, max_channels=2, out_dtype="int16", acc_width=24),
    BlockSpec.of("requantizer", lanes=1, max_channels=16, out_dtype="uint8"),
    # tiny buffer: full-depth units and overflow are cheap to reach; odd output count
    BlockSpec.of("broadcaster", width=8, outputs=3, depth=16, repeat_width=3),
    # D2MoE's two configurations: b1 = 2 up to 4 bits, b1 = 5 up to 8 bits
    BlockSpec.of("mwq_decoder", lanes=8, base_bits=2, max_planes=2, frac_bits=4),
    BlockSpec.of(
        "mwq_decoder", lanes=4, base_bits=5, max_planes=3, out_dtype="int16", rounding="floor"
    ),
    # every slot kept (dense), 1:8 int16, 2:4 uint8
    BlockSpec.of("sparse_expander", n=4, m=4, groups=4),
    BlockSpec.of("sparse_expander", n=1, m=8, groups=2, dtype="int16"),
    BlockSpec.of("sparse_expander", n=2, m=4, groups=3, dtype="uint8"),
]


@pytest.mark.parametrize("spec", OTHER_PARAMETERS, ids=str)
def test_block_other_parameters(spec: BlockSpec, sim: str, tmp_path) -> None:
    check(run_bench(spec, sim=sim, transactions=2000, work_dir=tmp_path), transactions=2000)


@pytest.mark.parametrize("rounding", [m for m in ROUNDING_MODES if m != "conv_even"])
def test_mwq_decoder_rounding_modes(rounding: str, sim: str, tmp_path) -> None:
    """The decoder's rounding is a build constant: its ties (directed) in every other mode."""
    spec = BlockSpec.of("mwq_decoder", lanes=2, max_planes=1, frac_bits=3, rounding=rounding)
    result = run_bench(spec, sim=sim, work_dir=tmp_path, tests=("directed",))
    assert result.passed, result.summary()


@pytest.mark.verilator
def test_requantizer_on_verilator(tmp_path) -> None:
    """CI runs at least one block on Verilator, whatever CODESIGN_SIM says."""
    result = run_bench(BlockSpec.of("requantizer"), sim="verilator", work_dir=tmp_path)
    check(result, transactions=DEFAULT_TRANSACTIONS)
