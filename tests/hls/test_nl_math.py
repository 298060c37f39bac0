"""nl_math.h (the C++ of the nonlinear arithmetic) equals codesign.sim.numerics.nonlinear bit for
bit: a g++ probe runs every function over many fp32 inputs (edge cases: signed zeros,
denormals, infinities, NaN, the exp/erf/tanh branch limits, huge values) and rows."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from codesign.hls.nl_math import NL_MATH_H, nl_math_source
from codesign.sim.numerics import nonlinear as nl
from tests.hls.conftest import needs_gxx

pytestmark = [pytest.mark.gxx, needs_gxx]

#: the simulator's function of each element-wise nl_math function, with its ``dtype`` rule
ELEMENTWISE = {
    "exp": lambda x, d: nl.exp_f32(x, dtype=d),
    "reciprocal": lambda x, d: nl.reciprocal_f32(x, dtype=d),
    "rsqrt": lambda x, d: nl.rsqrt_f32(x, dtype=d),
    "sqrt": lambda x, d: nl.sqrt_f32(x, dtype=d),
    "erf": lambda x, d: nl.erf_f32(x, dtype=d),
    "tanh": lambda x, d: nl.tanh_f32(x, dtype=d),
    "sigmoid": lambda x, d: nl.sigmoid_f32(x, dtype=d),
    "gelu": lambda x, d: nl.gelu_f32(x, dtype=d),
    "gelu_tanh": lambda x, d: nl.gelu_f32(x, "tanh", dtype=d),
    "silu": lambda x, d: nl.silu_f32(x, dtype=d),
    "bf16_round": lambda x, d: nl.to_bf16(x),  # idempotent: the same under the bf16 rule
}

_PROBE = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "nl_math.h"
using namespace codesign_nl;
static std::vector<float> load(const char* path, long n) {
  std::vector<float> v(static_cast<size_t>(n));
  FILE* f = std::fopen(path, "rb");
  if (!f || std::fread(v.data(), 4, v.size(), f) != v.size()) std::exit(3);
  std::fclose(f);
  return v;
}
int main(int argc, char** argv) {
  if (argc != 6) return 2;
  const long n = std::atol(argv[2]);
  const int row = std::atoi(argv[3]);
  const bool bf16 = argv[5][0] == 'b';  // bf16 tensors: inputs and results rounded to bf16
  std::vector<float> x = load(argv[1], n);
  if (bf16)
    for (float& v : x) v = nl_bf16_round(v);
  const std::vector<float> gamma(x.begin(), x.begin() + row);
  std::vector<float> out;
  float (*el[])(float) = {nl_exp, nl_reciprocal, nl_rsqrt, nl_sqrt, nl_erf, nl_tanh,
                          nl_sigmoid, nl_gelu, nl_gelu_tanh, nl_silu, nl_bf16_round};
  for (auto f : el)
    for (long i = 0; i < n; ++i) out.push_back(f(x[static_cast<size_t>(i)]));
  std::vector<float> y(static_cast<size_t>(row));
  for (long r = 0; r + row <= n; r += row) {
    const float* xr = x.data() + r;
    nl_softmax_row(xr, y.data(), row);
    out.insert(out.end(), y.begin(), y.end());
    nl_layernorm_row(xr, gamma.data(), xr, 1e-5f, y.data(), row);
    out.insert(out.end(), y.begin(), y.end());
    nl_layernorm_row(xr, nullptr, nullptr, 1e-5f, y.data(), row);
    out.insert(out.end(), y.begin(), y.end());
    nl_rmsnorm_row(xr, gamma.data(), 1e-6f, y.data(), row);
    out.insert(out.end(), y.begin(), y.end());
    out.push_back(nl_row_mean(xr, row));
    out.push_back(nl_row_sum(xr, row));
  }
  if (bf16)
    for (float& v : out) v = nl_bf16_round(v);
  FILE* f = std::fopen(argv[4], "wb");
  if (!f || std::fwrite(out.data(), 4, out.size(), f) != out.size()) return 4;
  std::fclose(f);
  return 0;
}
"""


def _inputs() -> np.ndarray:
    """Edge cases, every branch boundary with its fp32 neighbours, wide random bit patterns and
    values in the functions' working ranges."""
    f = np.float32
    edges = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 4.0, -4.0, 9.1, -9.1, 2.0, 88.0, -88.0, 100.0]
    edges += [float(nl.EXP_MIN), float(nl.EXP_MAX), 1e-45, -1e-45, 1e-40, -1e-40, 1.17549435e-38]
    edges += [3.4028235e38, -3.4028235e38, np.inf, -np.inf, np.nan, 1e20, -1e20, 1e-20, 0.25]
    base = np.array(edges, f)
    with np.errstate(all="ignore"):
        up, down = np.nextafter(base, f(np.inf)), np.nextafter(base, f(-np.inf))
    near = np.concatenate([up, down, base]).astype(f)
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32).view(f)
    normal = rng.normal(0.0, 4.0, 20000).astype(f)
    wide = (rng.standard_normal(8000) * 10.0 ** rng.uniform(-8, 3, 8000)).astype(f)
    neg_payload = np.array([0xFFC00000, 0x7FC00001, 0xFF800001], np.uint32).view(f)
    x = np.concatenate([near, neg_payload, normal, wide, bits]).astype(f)
    return x[: len(x) // 64 * 64]


def _bf16(fn, dtype: str):
    """``fn`` with the simulator's bf16 rule (for row_sum_f32, which has no ``dtype``)."""
    if dtype == "float32":
        return fn
    return lambda x: nl.to_bf16(fn(nl.to_bf16(x)))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


@pytest.mark.parametrize("dtype", ["float32", "bf16"])
def test_nl_math_equals_the_simulator_bit_for_bit(tmp_path, dtype):
    """fp32, and the bf16 rule (inputs and results rounded to bf16 around the fp32 arithmetic:
    the simulator's ``dtype="bf16"``)."""
    (tmp_path / NL_MATH_H).write_bytes(nl_math_source())
    (tmp_path / "probe.cpp").write_text(_PROBE)
    exe = tmp_path / "probe"
    subprocess.run(
        ["g++", "-std=c++20", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
         str(tmp_path / "probe.cpp"), "-o", str(exe)],
        check=True, capture_output=True,
    )  # fmt: skip
    x = _inputs()
    row = 64
    x.tofile(tmp_path / "x.bin")
    out = tmp_path / "y.bin"
    subprocess.run(
        [str(exe), str(tmp_path / "x.bin"), str(len(x)), str(row), str(out), dtype], check=True
    )
    got = np.fromfile(out, np.float32)
    with np.errstate(all="ignore"):
        want = [fn(x, dtype) for fn in ELEMENTWISE.values()]
        gamma = x[:row]
        rows = x.reshape(-1, row)
        per_row = [
            nl.softmax_f32(rows, dtype=dtype),
            nl.layernorm_f32(rows, gamma, rows, 1e-5, dtype=dtype),
            nl.layernorm_f32(rows, None, None, 1e-5, dtype=dtype),
            nl.rmsnorm_f32(rows, gamma, 1e-6, dtype=dtype),
            nl.row_mean_f32(rows, dtype=dtype),
            _bf16(nl.row_sum_f32, dtype)(rows),
        ]
    want.append(np.concatenate(per_row, axis=1).reshape(-1))
    want = np.concatenate([np.asarray(w, np.float32).reshape(-1) for w in want])
    assert got.shape == want.shape
    n = len(x)
    names = [*ELEMENTWISE, "rows"]
    for k, name in enumerate(names):
        g, w = _bits(got[k * n : (k + 1) * n]), _bits(want[k * n : (k + 1) * n])
        bad = np.flatnonzero(g != w)
        assert not len(bad), (
            f"{name}: {len(bad)} differences, first at x={x[bad[0] % n]!r}: "
            f"C++ {g[bad[0]]:#010x}, simulator {w[bad[0]]:#010x}"
        )
