"""The x86 header set (hls/include) and pl_common.h against codesign.sim.numerics, through small
g++ programs: ap_int wrap on assignment, arithmetic shifts, beat slices, bf16 rounding, and
hls::stream's refusal to read an empty stream."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from codesign.hls.check import CXXFLAGS, include_dir
from codesign.hls.pl import render
from codesign.sim import numerics
from tests.hls.conftest import needs_gxx

pytestmark = [pytest.mark.gxx, needs_gxx]


def run_cpp(tmp_path: Path, body: str, stdin: str = "") -> str:
    """Compile a main() around ``body`` (with pl_common.h for a 128-bit beat) and run it."""
    (tmp_path / "pl_common.h").write_bytes(render("pl_common.h.j2", bits=128))
    src = tmp_path / "t.cpp"
    src.write_text(
        '#include <cstdio>\n#include <iostream>\n#include "pl_common.h"\n'
        "using namespace codesign_pl;\nint main() {\n" + body + "\n}\n"
    )
    exe = tmp_path / "t"
    subprocess.run(
        ["g++", *CXXFLAGS, "-I", str(include_dir()), "-I", str(tmp_path), str(src), "-o", str(exe)],
        check=True,
    )
    return subprocess.run(
        [str(exe)], input=stdin, capture_output=True, text=True, check=True
    ).stdout


VALUES = [
    0,
    1,
    -1,
    127,
    128,
    -128,
    -129,
    255,
    256,
    32767,
    32768,
    -32769,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**40 + 12345,
    -(2**40) - 7,
    2**63 - 1,
    -(2**63),
]


def test_assignment_wraps_like_numpy(tmp_path):
    """ap_int<W>/ap_uint<W> = int64 keeps the low W bits: numpy's astype and acc32 wrap."""
    body = (
        "long long v; while (std::cin >> v) { ap_int<8> a = v; ap_uint<8> b = v; ap_int<16> c = v; ap_int<32> d = v; ap_uint<16> e = v;\n"
        'std::printf("%lld %lld %lld %lld %lld\\n", (long long)a.to_int64(), (long long)b.to_int64(), (long long)c.to_int64(), (long long)d.to_int64(), (long long)e.to_int64()); }'
    )
    out = run_cpp(tmp_path, body, " ".join(map(str, VALUES)))
    got = [list(map(int, line.split())) for line in out.splitlines()]
    v = np.array(VALUES, dtype=np.int64)
    want = np.stack(
        [
            v.astype(np.int8),
            v.astype(np.uint8),
            v.astype(np.int16),
            numerics.wrap_int32(v),
            v.astype(np.uint16),
        ],
        axis=1,
    ).astype(np.int64)
    assert got == want.tolist()


def test_shift_right_is_floor_rounding(tmp_path):
    """>> of a negative ap_int is arithmetic: round_shift's 'floor' mode."""
    rng = np.random.default_rng(1)
    xs = rng.integers(-(2**31), 2**31, size=200, dtype=np.int64)
    shifts = rng.integers(0, 31, size=200)
    body = (
        "long long x; int s; while (std::cin >> x >> s) { ap_int<32> a = x; ap_uint<32> u = x;\n"
        'std::printf("%lld %llu\\n", (long long)(a >> s), (unsigned long long)(u >> s)); }'
    )
    stdin = "\n".join(f"{x} {s}" for x, s in zip(xs, shifts, strict=True))
    out = [line.split() for line in run_cpp(tmp_path, body, stdin).splitlines()]
    assert [int(a) for a, _ in out] == numerics.round_shift(xs, shifts, "floor").tolist()
    assert [int(u) for _, u in out] == (xs.astype(np.uint32).astype(np.int64) >> shifts).tolist()


def test_beat_slices_cross_words(tmp_path):
    """range(hi, lo) reads and writes any slice of a 128-bit beat, across the 64-bit word."""
    body = """beat_t b = 0;
for (int e = 0; e < 8; ++e) b.range(16 * e + 15, 16 * e) = 0xA000 + e;
b.range(71, 56) = 0xBEEF;
std::printf("%llx %llx %llx %llx\\n", (unsigned long long)b.get_range(63, 0), (unsigned long long)b.get_range(127, 64),
            (unsigned long long)b.range(71, 56), (unsigned long long)b.get_range(127, 120));"""
    words = run_cpp(tmp_path, body).split()
    lanes = [0xA000 + e for e in range(8)]
    value = sum(v << (16 * e) for e, v in enumerate(lanes))
    value = (value & ~(0xFFFF << 56)) | (0xBEEF << 56)
    assert [int(w, 16) for w in words] == [
        value & (2**64 - 1),
        value >> 64,
        0xBEEF,
        value >> 120,
    ]


def test_bf16_rounding_matches_numerics(tmp_path):
    """bf16_round is numerics.to_bf16 bit for bit: every rounding case of the low 16 bits
    (exhaustive over them for a few exponents) and the specials."""
    lows = np.arange(0, 2**16, dtype=np.uint32)
    highs = np.array([0x3F80, 0xBF80, 0x0000, 0x7F7F, 0x0080, 0x8001], dtype=np.uint32)
    bits = ((highs[:, None] << 16) | lows[None, :]).reshape(-1)
    bits = np.concatenate([bits, np.array([0x7F800000, 0xFF800000, 0x7FC00000], dtype=np.uint32)])
    body = 'unsigned v; while (std::cin >> v) std::printf("%u\\n", float_to_bits(bf16_round(bits_to_float(v))));'
    got = np.array(run_cpp(tmp_path, body, "\n".join(map(str, bits))).split(), dtype=np.uint64)
    want = numerics.to_bf16(bits.view(np.float32)).view(np.uint32)
    assert (got == want).all()


def test_empty_stream_read_fails(tmp_path):
    body = (
        'hls::stream<beat_t> s("a0"); s.write(beat_t(7));\n'
        "const beat_t b = s.read();\n"
        'std::printf("%llu %zu\\n", (unsigned long long)b.get_range(63, 0), s.size());\n'
        'try { s.read(); } catch (const std::exception& e) { std::printf("%s\\n", e.what()); }'
    )
    out = run_cpp(tmp_path, body).splitlines()
    assert out == ["7 0", "read from empty hls::stream a0"]
