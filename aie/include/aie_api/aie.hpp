// codesign x86 model of the subset of the AIE API (aie::) that codesign's AIE-ML kernels use.
//
// Not AMD's header: plain C++20 written from the AIE API's documented behaviour so that g++ can
// compile and run the generated kernels here. What is modelled, and how (checked against
// codesign.sim.numerics by tests/aie/test_headers.py):
//  - aie::vector<T, N>: N lanes of T.
//  - aie::accum<acc32|acc64|accfloat, N>: acc32 lanes wrap at 32 bits (two's complement) on
//    every operation; acc64 lanes are int64; accfloat lanes are fp32.
//  - aie::mmul<M, K, N, TA, TB, Tag>: the native matrix multiply (A block M x K row-major,
//    B block K x N row-major, C block M x N row-major). Integer products are exact (acc32 wraps);
//    bf16 products are exact and a mmul's running sum is kept exact until it leaves the mmul as
//    an fp32 accumulator (the model of codesign.sim.numerics.mac_partial_bf16).
//  - to_vector<T>(shift): SRS, the rounding right shift with the mode set by aie::set_rounding
//    and saturation (aie::set_saturation) into T.
//  - bfloat16: round to nearest even from float; a NaN stays a (quiet) NaN.
#pragma once

#include <adf.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

class bfloat16 {
 public:
  bfloat16() = default;
  // round to nearest even; NaN -> the quiet NaN 0x7FC0
  bfloat16(float f) {  // NOLINT: implicit, as the AIE type converts
    std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if (std::isnan(f)) {
      bits_ = 0x7FC0;
    } else {
      std::uint64_t w = u;
      w = (w + 0x7FFFu + ((w >> 16) & 1u)) & 0xFFFF0000u;
      bits_ = static_cast<std::uint16_t>(w >> 16);
    }
  }
  operator float() const {  // NOLINT: exact widening
    return std::bit_cast<float>(static_cast<std::uint32_t>(bits_) << 16);
  }
  static bfloat16 from_bits(std::uint16_t b) {
    bfloat16 x;
    x.bits_ = b;
    return x;
  }
  std::uint16_t bits() const { return bits_; }

 private:
  std::uint16_t bits_ = 0;
};

namespace aie {

enum class rounding_mode {
  floor,
  ceil,
  positive_inf,
  negative_inf,
  symmetric_inf,
  symmetric_zero,
  conv_even,
  conv_odd,
};

enum class saturation_mode { none, truncate, saturate, symmetric };

namespace detail {
struct modes {
  rounding_mode rnd = rounding_mode::floor;  // the core's reset state
  saturation_mode sat = saturation_mode::none;
};
inline modes& state() {
  thread_local modes m;
  return m;
}

// x / 2**shift rounded with mode (shift in 0..63), exact on int64.
inline std::int64_t round_shift(std::int64_t x, unsigned shift, rounding_mode mode) {
  if (shift == 0) return x;
  const std::int64_t floor = x >> shift;  // arithmetic shift (C++20)
  const std::uint64_t mask = (std::uint64_t{1} << shift) - 1;
  const std::uint64_t rem = static_cast<std::uint64_t>(x) & mask;
  if (rem == 0 || mode == rounding_mode::floor) return floor;
  if (mode == rounding_mode::ceil) return floor + 1;
  const std::uint64_t half = std::uint64_t{1} << (shift - 1);
  if (rem > half) return floor + 1;
  if (rem < half) return floor;
  bool up = false;  // a tie
  switch (mode) {
    case rounding_mode::positive_inf: up = true; break;
    case rounding_mode::negative_inf: up = false; break;
    case rounding_mode::symmetric_inf: up = x >= 0; break;
    case rounding_mode::symmetric_zero: up = x < 0; break;
    case rounding_mode::conv_even: up = (floor & 1) != 0; break;
    case rounding_mode::conv_odd: up = (floor & 1) == 0; break;
    default: break;
  }
  return floor + (up ? 1 : 0);
}

inline std::int64_t wrap32(std::int64_t x) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(x)));
}

template <typename T>
T narrow(std::int64_t x, saturation_mode sat) {
  constexpr std::int64_t lo = std::numeric_limits<T>::min();
  constexpr std::int64_t hi = std::numeric_limits<T>::max();
  if (sat == saturation_mode::saturate) return static_cast<T>(x < lo ? lo : (x > hi ? hi : x));
  if (sat == saturation_mode::symmetric) {
    const std::int64_t slo = std::is_signed_v<T> ? -hi : lo;
    return static_cast<T>(x < slo ? slo : (x > hi ? hi : x));
  }
  return static_cast<T>(static_cast<std::make_unsigned_t<T>>(static_cast<std::uint64_t>(x)));
}

template <typename Tag>
using lane_t = std::conditional_t<std::is_same_v<Tag, accfloat>, float, std::int64_t>;

template <typename Tag>
std::int64_t fix(std::int64_t x) {
  if constexpr (std::is_same_v<Tag, acc32>) return wrap32(x);
  return x;
}
}  // namespace detail

inline void set_rounding(rounding_mode m) { detail::state().rnd = m; }
inline rounding_mode get_rounding() { return detail::state().rnd; }
inline void set_saturation(saturation_mode m) { detail::state().sat = m; }
inline saturation_mode get_saturation() { return detail::state().sat; }

template <typename T, unsigned N>
class vector {
 public:
  using value_type = T;
  static constexpr unsigned size() { return N; }
  T get(unsigned i) const { return v_[i]; }
  void set(T x, unsigned i) { v_[i] = x; }
  T& operator[](unsigned i) { return v_[i]; }
  const T& operator[](unsigned i) const { return v_[i]; }

 private:
  std::array<T, N> v_{};
};

template <typename Tag, unsigned N>
class accum {
 public:
  using lane = detail::lane_t<Tag>;
  static constexpr unsigned size() { return N; }
  lane get(unsigned i) const { return v_[i]; }
  void set_lane(lane x, unsigned i) {
    if constexpr (std::is_same_v<Tag, accfloat>) {
      v_[i] = x;
    } else {
      v_[i] = detail::fix<Tag>(x);
    }
  }

  // SRS: shift right with the current rounding mode, then narrow with the saturation mode.
  template <typename T>
  vector<T, N> to_vector(int shift = 0) const {
    vector<T, N> out;
    const auto& st = detail::state();
    for (unsigned i = 0; i < N; ++i) {
      if constexpr (std::is_same_v<Tag, accfloat>) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, bfloat16>);
        out[i] = T(v_[i]);
      } else {
        const std::int64_t r = detail::round_shift(v_[i], static_cast<unsigned>(shift), st.rnd);
        out[i] = detail::narrow<T>(r, st.sat);
      }
    }
    return out;
  }

  // UPS: load a vector into the accumulator, shifted left by `shift`.
  template <typename T>
  void from_vector(const vector<T, N>& v, int shift = 0) {
    for (unsigned i = 0; i < N; ++i) {
      if constexpr (std::is_same_v<Tag, accfloat>) {
        v_[i] = static_cast<float>(v[i]);
      } else {
        v_[i] = detail::fix<Tag>(static_cast<std::int64_t>(
            static_cast<std::uint64_t>(static_cast<std::int64_t>(v[i])) << shift));
      }
    }
  }

 private:
  std::array<lane, N> v_{};
};

template <typename T, unsigned N>
vector<T, N> load_v(const T* p) {
  vector<T, N> v;
  for (unsigned i = 0; i < N; ++i) v[i] = p[i];
  return v;
}

template <unsigned N, typename T>
vector<T, N> load_v(const T* p) {
  return load_v<T, N>(p);
}

template <typename T, unsigned N>
void store_v(T* p, const vector<T, N>& v) {
  for (unsigned i = 0; i < N; ++i) p[i] = v[i];
}

template <typename T, unsigned N>
vector<T, N> broadcast(T x) {
  vector<T, N> v;
  for (unsigned i = 0; i < N; ++i) v[i] = x;
  return v;
}

template <typename Tag, unsigned N>
accum<Tag, N> zeros() {
  return accum<Tag, N>{};
}

// lane-wise sum of two accumulators (acc32 wraps; accfloat rounds to fp32)
template <typename Tag, unsigned N>
accum<Tag, N> add(const accum<Tag, N>& a, const accum<Tag, N>& b) {
  accum<Tag, N> r;
  for (unsigned i = 0; i < N; ++i) {
    if constexpr (std::is_same_v<Tag, accfloat>) {
      r.set_lane(a.get(i) + b.get(i), i);
    } else {
      r.set_lane(static_cast<std::int64_t>(static_cast<std::uint64_t>(a.get(i)) +
                                           static_cast<std::uint64_t>(b.get(i))),
                 i);
    }
  }
  return r;
}

// lane-wise max with a scalar; a NaN lane stays NaN (as numpy.maximum)
template <typename T, unsigned N>
vector<T, N> max(const vector<T, N>& v, T s) {
  vector<T, N> r;
  for (unsigned i = 0; i < N; ++i) {
    const T x = v[i];
    if constexpr (std::is_floating_point_v<T>) {
      r[i] = (std::isnan(x) || x >= s) ? x : s;
    } else {
      r[i] = x >= s ? x : s;
    }
  }
  return r;
}

// lane-wise int32 x int32 product into acc64 (exact)
template <unsigned N>
accum<acc64, N> mul(const vector<std::int32_t, N>& a, const vector<std::int32_t, N>& b) {
  accum<acc64, N> r;
  for (unsigned i = 0; i < N; ++i) r.set_lane(std::int64_t{a[i]} * std::int64_t{b[i]}, i);
  return r;
}

template <unsigned M, unsigned K, unsigned N, typename TA, typename TB, typename Tag>
class mmul {
 public:
  static constexpr unsigned size_A = M * K;
  static constexpr unsigned size_B = K * N;
  static constexpr unsigned size_C = M * N;
  using accum_type = accum<Tag, M * N>;

  void mul(const vector<TA, size_A>& a, const vector<TB, size_B>& b) {
    sum_.fill(0);
    mac(a, b);
  }

  void mac(const vector<TA, size_A>& a, const vector<TB, size_B>& b) {
    for (unsigned r = 0; r < M; ++r) {
      for (unsigned c = 0; c < N; ++c) {
        for (unsigned k = 0; k < K; ++k) {
          if constexpr (std::is_same_v<Tag, accfloat>) {
            sum_[r * N + c] += double(float(a[r * K + k])) * double(float(b[k * N + c]));
          } else {
            const std::int64_t p = std::int64_t{a[r * K + k]} * std::int64_t{b[k * N + c]};
            sum_[r * N + c] = detail::fix<Tag>(static_cast<std::int64_t>(
                static_cast<std::uint64_t>(static_cast<std::int64_t>(sum_[r * N + c])) +
                static_cast<std::uint64_t>(p)));
          }
        }
      }
    }
  }

  accum_type to_accum() const {
    accum_type r;
    for (unsigned i = 0; i < size_C; ++i) {
      if constexpr (std::is_same_v<Tag, accfloat>) {
        r.set_lane(static_cast<float>(sum_[i]), i);  // one rounding to fp32
      } else {
        r.set_lane(static_cast<std::int64_t>(sum_[i]), i);
      }
    }
    return r;
  }

  template <typename T>
  vector<T, size_C> to_vector(int shift = 0) const {
    return to_accum().template to_vector<T>(shift);
  }

 private:
  using sum_t = std::conditional_t<std::is_same_v<Tag, accfloat>, double, std::int64_t>;
  std::array<sum_t, size_C> sum_{};
};

}  // namespace aie
