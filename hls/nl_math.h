// codesign nl_math.h: the nonlinear functions of codesign.sim.numerics.nonlinear in scalar C++.
// Shipped with codesign (codesign/hls/nl_math.h) and copied verbatim into a build (hls/nl_math.h;
// AIE kernels may copy it next to theirs). Do not edit a copy: edit the package's file.
//
// Contract: every function computes bit for bit what the function of the same name in
// sim/numerics/nonlinear.py computes (`codesign check` and tests/hls/test_nl_math.py compare
// them), with the same fp32 operations in the same order: multiplies and adds rounded to fp32
// after each step (no contraction into fused multiply-adds: compile without -ffast-math and
// with -ffp-contract=off, which is g++'s default under -std=c++20), compares, and the exponent
// steps std::frexp / std::ldexp. The one wide operation is the row sum: a float64 accumulator
// fed left to right, rounded once to fp32 (nl_row_sum; the simulator's row_sum_f32).
// NaN results are the canonical quiet NaN (0x7FC00000) where the simulator writes np.nan, and
// the input NaN quieted where the simulator's x * f(x) passes it through (sqrt, gelu, silu):
// those are explicit here, so no operand order a compiler picks can change them.
//
// bf16 tensors: round inputs (and gamma/beta) with nl_bf16_round, compute in fp32, round the
// result with nl_bf16_round (the simulator's dtype="bf16" rule).
//
// Plain C++ (float, double, int): no HLS or AIE types, compiles with -Wall -Werror.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace codesign_nl {

// The constants of nonlinear.py, as the exact fp32 values numpy rounds them to.
constexpr float LN2_HI = 0x1.62e4p-1f;
constexpr float LN2_LO = 0x1.7f7d1cp-20f;
constexpr float LOG2E = 0x1.715476p+0f;
constexpr float EXP_MIN = -0x1.5d589ep+6f;
constexpr float EXP_MAX = 0x1.62e42ep+6f;
constexpr float EXP_POLY[8] = {0x1.a01a02p-13f, 0x1.6c16c2p-10f, 0x1.111112p-7f,
                               0x1.555556p-5f,  0x1.555556p-3f,  0x1.0p-1f,
                               0x1.0p+0f,       0x1.0p+0f};
constexpr float ERF_SMALL[6] = {-0x1.c02db4p-11f, 0x1.565bcep-8f,  -0x1.b82ce4p-6f,
                                0x1.ce2f22p-4f,   -0x1.812746p-2f, 0x1.20dd76p+0f};
constexpr float AS_P = 0x1.4f740ap-2f;
constexpr float AS_A[5] = {0x1.0fb844p+0f, -0x1.7401c6p+0f, 0x1.6be1c6p+0f, -0x1.23531cp-2f,
                           0x1.04f20cp-2f};
constexpr float TANH_SMALL[7] = {0x1.d6d3dp-9f,  -0x1.226e36p-7f, 0x1.664f48p-6f, -0x1.ba1ba2p-5f,
                                 0x1.111112p-3f, -0x1.555556p-2f, 0x1.0p+0f};
constexpr float RSQRT_A = 0x1.110624p+1f;
constexpr float RSQRT_B = -0x1.381062p+0f;
constexpr float RECIP_A = 0x1.69696ap+1f;
constexpr float RECIP_B = -0x1.e1e1e2p+0f;
constexpr float SQRT1_2 = 0x1.6a09e6p-1f;
constexpr float GELU_C = 0x1.988454p-1f;
constexpr float GELU_K = 0x1.6e4e26p-5f;

inline float nl_from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline std::uint32_t nl_to_bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
inline bool nl_isnan(float x) { return x != x; }
inline bool nl_isinf(float x) { return x == INFINITY || x == -INFINITY; }
inline float nl_nan() { return nl_from_bits(0x7FC00000u); }
inline float nl_inf() { return nl_from_bits(0x7F800000u); }
inline float nl_abs(float x) { return nl_from_bits(nl_to_bits(x) & 0x7FFFFFFFu); }
// |a| with the sign bit of b (np.copysign)
// a NaN input, quieted: what x * y gives for a NaN x (the simulator's IEEE rule on x86)
inline float nl_quiet(float x) { return nl_from_bits(nl_to_bits(x) | 0x00400000u); }
// |a| with the sign bit of b (np.copysign)
inline float nl_copysign(float a, float b) {
  return nl_from_bits((nl_to_bits(a) & 0x7FFFFFFFu) | (nl_to_bits(b) & 0x80000000u));
}

// float32 -> bf16 -> float32, round to nearest even, NaN -> quiet NaN (numerics.to_bf16)
inline float nl_bf16_round(float x) {
  if (nl_isnan(x)) return nl_nan();
  const std::uint64_t b = nl_to_bits(x);
  return nl_from_bits(static_cast<std::uint32_t>((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000u));
}

// p = c[0]; p = p * t + c[k]  (two roundings per step)
template <int N>
inline float nl_horner(const float (&c)[N], float t) {
  float p = c[0];
  for (int k = 1; k < N; ++k) p = p * t + c[k];
  return p;
}

// round half to even of |t| < 2**22 (np.rint): adding 1.5 * 2**23 leaves no fraction bits
inline float nl_rint_small(float t) {
  const float magic = 0x1.8p23f;
  return (t + magic) - magic;
}

// --- element-wise ---------------------------------------------------------------------------

inline float nl_exp(float x) {
  if (nl_isnan(x)) return nl_nan();
  if (x < EXP_MIN) return 0.0f;
  if (x > EXP_MAX) return nl_inf();
  const float n = nl_rint_small(x * LOG2E);
  const float r = (x - n * LN2_HI) - n * LN2_LO;
  return std::ldexp(nl_horner(EXP_POLY, r), static_cast<int>(n));
}

inline float nl_reciprocal(float x) {
  if (nl_isnan(x)) return nl_nan();
  if (nl_isinf(x)) return nl_copysign(0.0f, x);
  if (x == 0.0f) return nl_copysign(nl_inf(), x);
  int e = 0;
  const float m = std::frexp(nl_abs(x), &e);
  float y = RECIP_A + RECIP_B * m;
  for (int k = 0; k < 3; ++k) y = y * (2.0f - m * y);
  return std::ldexp(y, -e) * (x < 0.0f ? -1.0f : 1.0f);
}

// the IEEE fp32 quotient (correctly rounded)
inline float nl_div(float a, float b) { return a / b; }

inline float nl_rsqrt(float x) {
  if (x < 0.0f || nl_isnan(x)) return nl_nan();
  if (x == INFINITY) return 0.0f;
  if (x == 0.0f) return nl_inf();
  int e = 0;
  float m = std::frexp(x, &e);
  if (e & 1) {  // m' = m / 2 in [0.25, 1) and e' = e + 1 even
    m = m * 0.5f;
    e = e + 1;
  }
  float y = RSQRT_A + RSQRT_B * m;
  for (int k = 0; k < 4; ++k) y = y * (1.5f - 0.5f * m * y * y);
  return std::ldexp(y, -(e / 2));
}

inline float nl_sqrt(float x) {
  if (nl_isnan(x)) return nl_quiet(x);
  if (x == INFINITY) return nl_inf();
  if (x == 0.0f) return x;
  return x * nl_rsqrt(x);
}

inline float nl_erf(float x) {
  if (nl_isnan(x)) return nl_nan();
  const float a = nl_abs(x);
  const float x2 = x * x;
  if (a < 0.5f) return x * nl_horner(ERF_SMALL, x2);
  if (a >= 4.0f) return nl_copysign(1.0f, x);
  const float t = nl_reciprocal(1.0f + AS_P * a);
  const float poly = t * nl_horner(AS_A, t);
  return nl_copysign(1.0f - poly * nl_exp(-x2), x);
}

inline float nl_tanh(float x) {
  if (nl_isnan(x)) return nl_nan();
  const float a = nl_abs(x);
  if (a < 0.5f) return x * nl_horner(TANH_SMALL, x * x);
  if (a >= 9.1f) return nl_copysign(1.0f, x);
  return nl_copysign(1.0f - 2.0f * nl_reciprocal(nl_exp(2.0f * a) + 1.0f), x);
}

inline float nl_sigmoid(float x) { return nl_reciprocal(1.0f + nl_exp(-x)); }

// GELU, approximate="none": 0.5 * x * (1 + erf(x / sqrt 2))
inline float nl_gelu(float x) {
  if (nl_isnan(x)) return nl_quiet(x);
  return 0.5f * x * (1.0f + nl_erf(x * SQRT1_2));
}

// GELU, approximate="tanh": 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
inline float nl_gelu_tanh(float x) {
  if (nl_isnan(x)) return nl_quiet(x);
  return 0.5f * x * (1.0f + nl_tanh(GELU_C * (x + GELU_K * x * x * x)));
}

inline float nl_silu(float x) {
  if (nl_isnan(x)) return nl_quiet(x);
  return x * nl_sigmoid(x);
}

// --- row-wise (one row of n elements, the last axis) ----------------------------------------

// float64 accumulator fed x[0], x[1], ... in order, rounded once to fp32
inline float nl_row_sum(const float* x, int n) {
  double acc = 0.0;
  for (int i = 0; i < n; ++i) acc += static_cast<double>(x[i]);
  return static_cast<float>(acc);
}

// the row maximum; a NaN anywhere gives NaN (np.max)
inline float nl_row_max(const float* x, int n) {
  float m = x[0];
  for (int i = 1; i < n; ++i) {
    if (nl_isnan(m)) break;
    if (nl_isnan(x[i]) || x[i] > m) m = x[i];
  }
  return m;
}

// fp32 1/n as numpy forms F32(1.0 / n)
inline float nl_inv_n(int n) { return static_cast<float>(1.0 / static_cast<double>(n)); }

inline float nl_row_mean(const float* x, int n) { return nl_row_sum(x, n) * nl_inv_n(n); }

// softmax of x into y (y may be x): e = exp(x - max), e * reciprocal(row_sum(e))
inline void nl_softmax_row(const float* x, float* y, int n) {
  const float m = nl_row_max(x, n);
  for (int i = 0; i < n; ++i) y[i] = nl_exp(x[i] - m);
  const float r = nl_reciprocal(nl_row_sum(y, n));
  for (int i = 0; i < n; ++i) y[i] = y[i] * r;
}

// LayerNormalization of x into y (y may be x); gamma, beta may be null (absent)
inline void nl_layernorm_row(const float* x, const float* gamma, const float* beta, float eps,
                             float* y, int n) {
  const float inv_n = nl_inv_n(n);
  const float mean = nl_row_sum(x, n) * inv_n;
  for (int i = 0; i < n; ++i) y[i] = x[i] - mean;
  double acc = 0.0;  // nl_row_sum of d * d, without a row buffer
  for (int i = 0; i < n; ++i) acc += static_cast<double>(y[i] * y[i]);
  const float var = static_cast<float>(acc) * inv_n;
  const float s = nl_rsqrt(var + eps);
  for (int i = 0; i < n; ++i) {
    float v = y[i] * s;
    if (gamma) v = v * gamma[i];
    if (beta) v = v + beta[i];
    y[i] = v;
  }
}

// RMSNormalization of x into y (y may be x): x * rsqrt(row_sum(x*x) / n + eps) * gamma
inline void nl_rmsnorm_row(const float* x, const float* gamma, float eps, float* y, int n) {
  double acc = 0.0;
  for (int i = 0; i < n; ++i) acc += static_cast<double>(x[i] * x[i]);
  const float s = nl_rsqrt(static_cast<float>(acc) * nl_inv_n(n) + eps);
  for (int i = 0; i < n; ++i) {
    float v = x[i] * s;
    if (gamma) v = v * gamma[i];
    y[i] = v;
  }
}

}  // namespace codesign_nl
