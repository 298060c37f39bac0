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

// Stream ports: a kernel's input_stream<T>* reads 32-bit words in order with readincr (the
// control records the PL sequencer sends on the rtp_<chain> PLIOs). Reading from an empty
// stream would stall on hardware; here it throws.
template <typename T>
struct input_stream {
  std::deque<T> q;
};

template <typename T>
inline T readincr(input_stream<T>* in) {
  if (in->q.empty()) throw std::runtime_error("readincr on an empty input stream");
  const T v = in->q.front();
  in->q.pop_front();
  return v;
}

// AIE compiler loop pragmas are plain keywords on hardware; here they expand to nothing.
#ifndef chess_prepare_for_pipelining
#define chess_prepare_for_pipelining
#endif
#ifndef chess_loop_range
#define chess_loop_range(lo, hi)
#endif

// ---- graph construction (x86 model) ------------------------------------------------------------
// Enough of the ADF graph API for g++ to compile a generated graph.h and for codesign check to
// read back what it connects: every create/connect/dimensions call appends a line to
// adf::graph_log(). Nodes are named by kind and creation order (kernel0, plio:a_0, buffer0).
#include <cstdio>
#include <initializer_list>
#include <map>
#include <string>

namespace adf {

inline std::vector<std::string>& graph_log() {
  static std::vector<std::string> log;
  return log;
}

inline int next_id(const std::string& kind) {
  static std::map<std::string, int> counters;
  return counters[kind]++;
}

struct endpoint {
  std::string node;
  char dir;
  int index;
  std::string str() const { return node + (dir == 'i' ? ".in[" : ".out[") + std::to_string(index) + "]"; }
};

struct port_array {
  std::string node;
  char dir = 'i';
  endpoint operator[](int i) const { return {node, dir, i}; }
};

struct ratio {};
struct cascade {};
struct parameter {};
struct input {};
struct output {};

enum plio_type { plio_32_bits = 32, plio_64_bits = 64, plio_128_bits = 128 };

class kernel {
 public:
  std::string id;
  port_array in, out;
  template <typename F>
  static kernel create(F* fn) {
    kernel k;  // F* type-checks that the kernel function is declared; the link that it exists
    k.id = "kernel" + std::to_string(next_id("kernel"));
    k.in = {k.id, 'i'};
    k.out = {k.id, 'o'};
    char addr[32];
    std::snprintf(addr, sizeof addr, "%llx",
                  static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(fn)));
    graph_log().push_back("kernel " + k.id + " " + addr);
    return k;
  }
};

class input_plio {
 public:
  std::string id;
  port_array out;
  static input_plio create(const std::string& name, plio_type bits, const std::string& file,
                           double mhz) {
    input_plio p;
    p.id = "plio:" + name;
    p.out = {p.id, 'o'};
    graph_log().push_back("plio in " + name + " " + std::to_string(int(bits)) + " " +
                          std::to_string(mhz) + " " + file);
    return p;
  }
};

class output_plio {
 public:
  std::string id;
  port_array in;
  static output_plio create(const std::string& name, plio_type bits, const std::string& file,
                            double mhz) {
    output_plio p;
    p.id = "plio:" + name;
    p.in = {p.id, 'i'};
    graph_log().push_back("plio out " + name + " " + std::to_string(int(bits)) + " " +
                          std::to_string(mhz) + " " + file);
    return p;
  }
};

template <typename T>
class shared_buffer {
 public:
  std::string id;
  port_array in, out;
  static shared_buffer create(std::initializer_list<unsigned> dims, int inputs, int outputs) {
    shared_buffer b;
    b.id = "buffer" + std::to_string(next_id("buffer"));
    b.in = {b.id, 'i'};
    b.out = {b.id, 'o'};
    unsigned bytes = 1;
    for (unsigned d : dims) bytes *= d * unsigned(sizeof(T));
    graph_log().push_back("buffer " + b.id + " " + std::to_string(bytes) + " " +
                          std::to_string(inputs) + " " + std::to_string(outputs));
    return b;
  }
};

template <typename Dir>
class port {};

struct async_ref {
  endpoint e;
};
inline async_ref async(endpoint e) { return {e}; }

inline void connect(const endpoint& src, const endpoint& dst) {
  graph_log().push_back("connect " + src.str() + " " + dst.str());
}

template <typename Kind>
void connect(const endpoint& src, const endpoint& dst) {
  static_assert(std::is_same_v<Kind, cascade>, "only cascades connect two kernels directly");
  graph_log().push_back("cascade " + src.str() + " " + dst.str());
}

template <typename Kind, typename Dir>
void connect(port<Dir>& rtp, async_ref dst) {
  static_assert(std::is_same_v<Kind, parameter>);
  (void)rtp;
  graph_log().push_back("parameter " + dst.e.str());
}

struct dims_sink {
  endpoint e;
  void operator=(std::initializer_list<unsigned> dims) {
    unsigned n = 1;
    for (unsigned d : dims) n *= d;
    graph_log().push_back("dimensions " + e.str() + " " + std::to_string(n));
  }
};
inline dims_sink dimensions(const endpoint& e) { return {e}; }

struct text_sink {
  std::string what;
  void operator=(const std::string& v) { graph_log().push_back(what + " " + v); }
  void operator=(double v) { graph_log().push_back(what + " " + std::to_string(v)); }
};
inline text_sink source(kernel& k) { return {"source " + k.id}; }
template <typename R>
text_sink runtime(kernel& k) {
  static_assert(std::is_same_v<R, ratio>);
  return {"ratio " + k.id};
}

class graph {
 public:
  void init() {}
  void run(int iterations) { (void)iterations; }
  void end() {}
};

}  // namespace adf
