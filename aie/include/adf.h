// codesign x86 model of the subset of the ADF kernel API that codesign's AIE-ML kernels use.
//
// Not AMD's header: a small plain-C++20 stand-in so that g++ can compile and run the generated
// kernels on this machine. Buffer ports are views of memory the harness owns; cascade ports are
// FIFO queues of accumulators between two kernels of a chain. Semantics are pinned against
// codesign.sim.numerics by tests/aie/test_headers.py.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <vector>

using int8 = std::int8_t;
using uint8 = std::uint8_t;
using int16 = std::int16_t;
using uint16 = std::uint16_t;
using int32 = std::int32_t;
using uint32 = std::uint32_t;
using int64 = std::int64_t;

// accumulator element tags (the AIE API's accumulator "types")
struct acc32 {};
struct acc64 {};
struct accfloat {};

namespace adf {

// A kernel's buffer port: a view of `size` elements that the harness (the graph's DMA) fills or
// drains between kernel invocations; double buffering is the graph's business, not the kernel's.
template <typename T>
class input_buffer {
 public:
  input_buffer(const T* data, std::size_t size) : data_(data), size_(size) {}
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const T* data_;
  std::size_t size_;
};

template <typename T>
class output_buffer {
 public:
  output_buffer(T* data, std::size_t size) : data_(data), size_(size) {}
  T* data() { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_;
  std::size_t size_;
};

}  // namespace adf

// Cascade ports: one queue shared by the writer (output_cascade) and the reader (input_cascade)
// of a cascade connection. An element is one accumulator lane held as int64 (acc32/acc64) or
// float (accfloat); reading from an empty queue is a deadlock on hardware, an exception here.
template <typename Tag>
struct cascade_queue {
  using lane = std::conditional_t<std::is_same_v<Tag, accfloat>, float, std::int64_t>;
  std::deque<lane> q;
};

template <typename Tag>
struct input_cascade {
  cascade_queue<Tag>* link;
};

template <typename Tag>
struct output_cascade {
  cascade_queue<Tag>* link;
};

// AIE compiler loop pragmas are plain keywords on hardware; here they expand to nothing.
#ifndef chess_prepare_for_pipelining
#define chess_prepare_for_pipelining
#endif
#ifndef chess_loop_range
#define chess_loop_range(lo, hi)
#endif
