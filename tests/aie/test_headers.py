"""The x86 AIE header set (aie/include) against the numerics package: SRS rounding modes
(exhaustive over int16 x shifts 0..15 x modes), acc64 SRS, acc32 wrap, mmul, bf16 rounding
(every bf16 pattern; a dense float32 sweep) and cascade queues."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codesign.aie.check import CXXFLAGS, include_dir
from codesign.sim import numerics

pytestmark = [
    pytest.mark.gxx,
    pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++"),
]

PROBE = Path(__file__).with_name("hdr_probe.cc")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("probe") / "probe"
    subprocess.run(
        ["g++", *CXXFLAGS, f"-I{include_dir()}", str(PROBE), "-o", str(exe)],
        check=True,
        capture_output=True,
    )
    return exe


def run(
    exe: Path, op: str, data: np.ndarray, out_dtype, mode: int = 0, shift: int = 0
) -> np.ndarray:
    d = exe.parent
    (d / "in.bin").write_bytes(np.ascontiguousarray(data).tobytes())
    subprocess.run(
        [str(exe), op, str(mode), str(shift), str(d / "in.bin"), str(d / "out.bin")], check=True
    )
    return np.frombuffer((d / "out.bin").read_bytes(), dtype=out_dtype)


def test_srs_every_int16_every_shift_every_mode(probe: Path) -> None:
    x = np.arange(-32768, 32768, dtype=np.int16)
    for mi, mode in enumerate(numerics.ROUNDING_MODES):
        for shift in range(16):
            got = run(probe, "srs16to8", x, np.int8, mi, shift)
            want = numerics.saturate(numerics.round_shift(x.astype(np.int64), shift, mode), "int8")
            assert np.array_equal(got, want), (mode, shift)


def test_srs_acc64_to_int32_saturates(probe: Path) -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.integers(-(2**62), 2**62, 4096),
            rng.integers(-(2**33), 2**33, 4096),
            [2**62, -(2**62), 2**31, -(2**31) - 1, 0, -1, 1, 3, -3, 5, -5, 7, -7, 2**40 + 2**39],
        ]
    ).astype(np.int64)
    x = np.concatenate([x, np.zeros((-x.size) % 8, dtype=np.int64)])
    for mi, mode in enumerate(numerics.ROUNDING_MODES):
        for shift in (0, 1, 2, 7, 15, 16, 31, 40, 62):
            got = run(probe, "srs64to32", x, np.int32, mi, shift)
            want = numerics.saturate(numerics.round_shift(x, shift, mode), "int32")
            assert np.array_equal(got, want), (mode, shift)


def test_acc32_add_wraps(probe: Path) -> None:
    rng = np.random.default_rng(1)
    ext = np.array([2**31 - 1, -(2**31), 1, -1, 0, 2**30, -(2**30), 12345], dtype=np.int32)
    a = np.concatenate([rng.integers(-(2**31), 2**31, 8192), ext, ext]).astype(np.int32)
    b = np.concatenate([rng.integers(-(2**31), 2**31, 8192), ext, ext[::-1]]).astype(np.int32)
    got = run(probe, "acc32add", np.concatenate([a, b]), np.int32)
    want = numerics.accumulate(a.astype(np.int64), b.astype(np.int64), "int8")
    assert np.array_equal(got, want)
    assert (np.asarray(want) != a.astype(np.int64) + b.astype(np.int64)).any()  # wrap happened


def test_mmul_int8_acc32_matches_the_wrapped_product(probe: Path) -> None:
    rng = np.random.default_rng(2)
    steps = 20000  # K = 160000: the all -128 lane sums to 2.6e9 and wraps acc32
    A = np.full((4, 8 * steps), -128, dtype=np.int8)
    B = np.full((8 * steps, 8), -128, dtype=np.int8)
    A[1:] = rng.integers(-128, 128, (3, 8 * steps))
    B[:, 1:] = rng.integers(-128, 128, (8 * steps, 7))
    blocks = []
    for s in range(steps):
        blocks.append(A[:, 8 * s : 8 * s + 8].reshape(-1))
        blocks.append(B[8 * s : 8 * s + 8].reshape(-1))
    got = run(probe, "mmul8", np.concatenate(blocks), np.int32).reshape(4, 8)
    want = numerics.accumulate(np.zeros(()), numerics.int_matmul(A, B), "int8")
    assert np.array_equal(got, want)
    assert want[0, 0] != 128 * 128 * 8 * steps  # the all -128 lane wrapped


def test_every_bf16_pattern_widens_exactly(probe: Path) -> None:
    bits = np.arange(2**16, dtype=np.uint16)
    got = run(probe, "frombf16", bits, np.uint32)
    assert np.array_equal(got, bits.astype(np.uint32) << 16)


def test_bf16_rounding_dense_float32_sweep(probe: Path) -> None:
    # every 251st float32 bit pattern (17 million values, all exponents, both signs) plus the
    # halfway cases around every bf16 value with an odd and an even last bit
    sweep = np.arange(0, 2**32, 251, dtype=np.uint64).astype(np.uint32)
    hi = np.arange(2**16, dtype=np.uint32) << 16
    ties = np.concatenate([hi | 0x8000, hi | 0x7FFF, hi | 0x8001])
    x = np.concatenate([sweep, ties]).view(np.float32)
    got = run(probe, "tobf16", x, np.uint16)
    want = (numerics.to_bf16(x).view(np.uint32) >> 16).astype(np.uint16)
    assert np.array_equal(got, want)


def test_cascade_queue_keeps_order(probe: Path) -> None:
    x = np.arange(-1024, 1024, dtype=np.int32) * 7919
    assert np.array_equal(run(probe, "cascade", x, np.int32), x)
