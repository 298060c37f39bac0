// Test driver of codesign's x86 AIE header set (tests/aie/test_headers.py): reads int64 or
// float32 values from IN, applies one operation of the headers, writes the results to OUT.
#include <adf.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "aie_api/aie.hpp"
#include "aie_api/aie_adf.hpp"

template <typename T>
std::vector<T> read_all(const char* path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(f)), {});
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

template <typename T>
void write_all(const char* path, const std::vector<T>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}

constexpr aie::rounding_mode modes[] = {
    aie::rounding_mode::floor,         aie::rounding_mode::ceil,
    aie::rounding_mode::positive_inf,  aie::rounding_mode::negative_inf,
    aie::rounding_mode::symmetric_inf, aie::rounding_mode::symmetric_zero,
    aie::rounding_mode::conv_even,     aie::rounding_mode::conv_odd,
};

int main(int argc, char** argv) {
  if (argc != 6) return 2;
  const std::string op = argv[1];
  const int mode = std::stoi(argv[2]);
  const int shift = std::stoi(argv[3]);
  aie::set_rounding(modes[mode]);
  aie::set_saturation(aie::saturation_mode::saturate);
  if (op == "srs16to8") {  // acc32 lanes from int16 values, SRS to int8
    const auto in = read_all<std::int16_t>(argv[4]);
    std::vector<std::int8_t> out(in.size());
    for (std::size_t i = 0; i < in.size(); i += 16) {
      aie::vector<int16, 16> v = aie::load_v<16>(in.data() + i);
      aie::accum<acc32, 16> acc;
      acc.from_vector(v);
      aie::store_v(out.data() + i, acc.to_vector<int8>(shift));
    }
    write_all(argv[5], out);
  } else if (op == "srs64to32") {  // acc64 lanes, SRS to int32
    const auto in = read_all<std::int64_t>(argv[4]);
    std::vector<std::int32_t> out(in.size());
    for (std::size_t i = 0; i < in.size(); i += 8) {
      aie::accum<acc64, 8> acc;
      for (unsigned l = 0; l < 8; ++l) acc.set_lane(in[i + l], l);
      aie::store_v(out.data() + i, acc.to_vector<int32>(shift));
    }
    write_all(argv[5], out);
  } else if (op == "acc32add") {  // pairs of int32 values added in acc32 (wraps)
    const auto in = read_all<std::int32_t>(argv[4]);
    std::vector<std::int32_t> out(in.size() / 2);
    for (std::size_t i = 0; i < out.size(); i += 8) {
      aie::accum<acc32, 8> a, b;
      a.from_vector(aie::load_v<8>(in.data() + i));
      b.from_vector(aie::load_v<8>(in.data() + out.size() + i));
      aie::store_v(out.data() + i, aie::add(a, b).to_vector<int32>(0));
    }
    write_all(argv[5], out);
  } else if (op == "mmul8") {  // 4x8x8 int8 mmul, K = 8 * (n / 64) blocks mac'ed, acc32
    const auto in = read_all<std::int8_t>(argv[4]);  // A blocks then B blocks, 32 + 64 per step
    aie::mmul<4, 8, 8, int8, int8, acc32> mm;
    const std::size_t steps = in.size() / 96;
    for (std::size_t s = 0; s < steps; ++s) {
      auto a = aie::load_v<32>(in.data() + s * 96);
      auto b = aie::load_v<64>(in.data() + s * 96 + 32);
      if (s == 0) mm.mul(a, b); else mm.mac(a, b);
    }
    std::vector<std::int32_t> out(32);
    aie::store_v(out.data(), mm.to_vector<int32>(0));
    write_all(argv[5], out);
  } else if (op == "tobf16") {  // float32 -> bfloat16 bits
    const auto in = read_all<float>(argv[4]);
    std::vector<std::uint16_t> out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = bfloat16(in[i]).bits();
    write_all(argv[5], out);
  } else if (op == "frombf16") {  // bfloat16 bits -> float32
    const auto in = read_all<std::uint16_t>(argv[4]);
    std::vector<float> out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = float(bfloat16::from_bits(in[i]));
    write_all(argv[5], out);
  } else if (op == "cascade") {  // accumulators through a cascade queue, in order
    const auto in = read_all<std::int32_t>(argv[4]);
    cascade_queue<acc32> link;
    output_cascade<acc32> w{&link};
    input_cascade<acc32> r{&link};
    for (std::size_t i = 0; i < in.size(); i += 16) {
      aie::accum<acc32, 16> a;
      a.from_vector(aie::load_v<16>(in.data() + i));
      writeincr(&w, a);
    }
    std::vector<std::int32_t> out(in.size());
    for (std::size_t i = 0; i < in.size(); i += 16)
      aie::store_v(out.data() + i, readincr_v<16>(&r).to_vector<int32>(0));
    write_all(argv[5], out);
  } else {
    return 2;
  }
  return 0;
}
