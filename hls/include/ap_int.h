// x86 stand-in for the subset of Vitis HLS <ap_int.h> that codesign's generated PL kernels use.
//
// ap_int<W> / ap_uint<W> hold W bits (1 <= W <= 1024) as little-endian 64-bit words.
//  - Assignment from an integer keeps the low W bits (two's-complement wrap), as in Vitis HLS.
//  - Arithmetic, comparison and shifts are defined for W <= 64: the operands are promoted to a
//    64-bit integer (signed for ap_int), which holds every result the kernels form, and the
//    result is an ordinary integer; storing it into an ap_int wraps. >> on ap_int is
//    arithmetic (floor), on ap_uint logical.
//  - range(hi, lo) reads or writes a slice of at most 64 bits at any width: the kernels pack
//    elements into stream beats with it.
// Pragmas are ignored by g++. This is plain C++20, not Xilinx's header.
#pragma once

#include <cstdint>
#include <type_traits>

namespace codesign_ap {

template <int W, bool S>
class ap_base {
  static_assert(W >= 1 && W <= 1024, "ap_int width must lie in 1..1024");

 public:
  static constexpr int width = W;
  static constexpr int words = (W + 63) / 64;
  std::uint64_t w[words] = {};

  constexpr ap_base() = default;
  template <typename I>
    requires std::is_integral_v<I>
  constexpr ap_base(I v) {  // NOLINT: implicit, as the HLS types
    set_int(static_cast<std::int64_t>(v), std::is_signed_v<I>);
  }
  template <int W2, bool S2>
  constexpr ap_base(const ap_base<W2, S2>& o) {
    for (int i = 0; i < words; ++i) {
      if (i < o.words) {
        w[i] = o.w[i];
      } else {
        w[i] = (S2 && o.negative()) ? ~std::uint64_t{0} : 0;
      }
    }
    // extend the sign of a narrower signed source inside its top word
    if constexpr (S2 && W2 % 64 != 0 && W2 < W) {
      if (o.negative()) w[(W2 - 1) / 64] |= ~std::uint64_t{0} << (W2 % 64);
    }
    mask();
  }

  constexpr bool negative() const {
    if constexpr (!S) {
      return false;
    } else {
      return (w[(W - 1) / 64] >> ((W - 1) % 64)) & 1;
    }
  }

  // The value as a 64-bit integer (W <= 64): sign-extended for ap_int.
  constexpr std::int64_t to_int64() const
    requires(W <= 64)
  {
    std::uint64_t v = w[0];
    if constexpr (S && W < 64) {
      if (negative()) v |= ~std::uint64_t{0} << W;
    }
    return static_cast<std::int64_t>(v);
  }
  constexpr std::uint64_t to_uint64() const
    requires(W <= 64)
  {
    return static_cast<std::uint64_t>(to_int64());
  }
  constexpr operator std::conditional_t<S, std::int64_t, std::uint64_t>() const
    requires(W <= 64)
  {
    if constexpr (S) {
      return to_int64();
    } else {
      return to_uint64();
    }
  }

  // Bits hi..lo (hi - lo < 64) as an unsigned 64-bit value.
  constexpr std::uint64_t get_range(int hi, int lo) const {
    const int n = hi - lo + 1;
    std::uint64_t v = w[lo / 64] >> (lo % 64);
    if (lo % 64 != 0 && lo / 64 + 1 < words) v |= w[lo / 64 + 1] << (64 - lo % 64);
    return n == 64 ? v : v & ((std::uint64_t{1} << n) - 1);
  }
  constexpr void set_range(int hi, int lo, std::uint64_t v) {
    const int n = hi - lo + 1;
    const std::uint64_t m = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
    v &= m;
    w[lo / 64] = (w[lo / 64] & ~(m << (lo % 64))) | (v << (lo % 64));
    if (lo % 64 != 0 && lo % 64 + n > 64) {
      const int sh = 64 - lo % 64;
      w[lo / 64 + 1] = (w[lo / 64 + 1] & ~(m >> sh)) | (v >> sh);
    }
    mask();
  }

  // A proxy for x.range(hi, lo): reads as ap_uint<64>-like value, assignable from integers.
  class range_ref {
   public:
    constexpr range_ref(ap_base* p, int hi, int lo) : p_(p), hi_(hi), lo_(lo) {}
    constexpr operator std::uint64_t() const { return p_->get_range(hi_, lo_); }
    template <typename V>
    constexpr range_ref& operator=(const V& v) {
      if constexpr (std::is_integral_v<V>) {
        p_->set_range(hi_, lo_, static_cast<std::uint64_t>(v));
      } else {
        p_->set_range(hi_, lo_, v.get_range(hi_ - lo_, 0));
      }
      return *this;
    }

   private:
    ap_base* p_;
    int hi_, lo_;
  };
  constexpr range_ref range(int hi, int lo) { return range_ref(this, hi, lo); }
  constexpr std::uint64_t range(int hi, int lo) const { return get_range(hi, lo); }
  constexpr bool operator[](int i) const { return get_range(i, i); }

 private:
  constexpr void set_int(std::int64_t v, bool sign_extend) {
    w[0] = static_cast<std::uint64_t>(v);
    for (int i = 1; i < words; ++i) w[i] = (sign_extend && v < 0) ? ~std::uint64_t{0} : 0;
    mask();
  }
  constexpr void mask() {
    if constexpr (W % 64 != 0) w[words - 1] &= (std::uint64_t{1} << (W % 64)) - 1;
  }
};

}  // namespace codesign_ap

template <int W>
using ap_int = codesign_ap::ap_base<W, true>;
template <int W>
using ap_uint = codesign_ap::ap_base<W, false>;
