"""Fuzz the options of ``codesign estimate``: any combination is answered with exit 0, or 2 and
one error line. (Found: a tiny --pl-clock made the modelled time infinite, an OverflowError.)"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness import harness

EXAMPLES = max(100, int(os.environ.get("CODESIGN_FUZZ_EXAMPLES", "0")) // 10)

DIM = st.one_of(
    st.sampled_from([0, 1, 2, 7, 8, 64, 1000, 4096, 2**31 - 1, 2**40, 10**30]),
    st.integers(1, 5000),
)
SHAPE = st.one_of(
    st.tuples(DIM, DIM, DIM).map(lambda t: "x".join(map(str, t))),
    st.sampled_from(["", "x", "1x2", "axbxc", "-1x2x3", "1x2x3x4", " 8 x 8 x 8 "]),
)
CLOCK = st.one_of(
    st.sampled_from(["0", "-1", "nan", "inf", "1e-300", "1e300", "0.5", "1", "312.5", "600"]),
    st.floats(0.001, 2000).map(str),
)
OPTIONS = st.fixed_dictionaries(
    {"--gemm": SHAPE},
    optional={
        "--board": st.sampled_from(["ve2302", "vek280", "vck190", "nope"]),
        "--dtype": st.sampled_from(["int8", "int16", "int16x8", "bf16", "int32", "fp32", "x"]),
        "--block": st.sampled_from(["1x1", "2x8", "4x4", "1x16", "40x40", "0x1", "2by8"]),
        "--tile": SHAPE,
        "--dataflow": st.sampled_from(["auto", "tempus", "reuse", "other"]),
        "--pl-clock": CLOCK,
        "--plio-bits": st.sampled_from(["32", "64", "128", "0", "-8", "256", "x"]),
        "--json": st.just(None),
    },
)


@pytest.mark.slow(seconds=570)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="CODESIGN_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(OPTIONS)
def test_estimate_options(options: dict[str, str | None]) -> None:
    args = [a for k, v in options.items() for a in ((k,) if v is None else (k, v))]
    result = harness.run_cli("estimate", *args)
    failure = harness.verdict([result])
    assert failure is None, failure


def test_tiny_pl_clock_is_refused() -> None:
    """The crash the options fuzzer found: infinite modelled time (OverflowError, exit 1)."""
    r = harness.run_cli("estimate", "--gemm", "1024x1024x1024", "--pl-clock", "1e-300")
    assert r.code == 2 and "pl_clock_mhz must be at least 1 MHz" in r.err
