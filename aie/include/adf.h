// codesign x86 model of the subset of the ADF kernel API that codesign's AIE-ML kernels use.
//
// Not AMD's header: a small plain-C++20 stand-in so that g++ can compile and run the generated
// kernels on this machine. Buffer ports hold their declared size and check whole transfers; cascade ports are
// FIFO queues of accumulators between two kernels of a chain. Semantics are pinned against
// codesign.sim.numerics by tests/aie/test_headers.py.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <utility>
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

// A kernel's buffer port, as the graph declares it: `adf::dimensions(port) = {size}` elements.
// On hardware the port's DMA fills (input) or drains (output) the whole declared buffer: a
// kernel fires only when an input buffer holds exactly `size` elements, and every invocation
// releases each output buffer whole, which its reader must take whole. A transfer of another
// length stalls the graph or shifts every later buffer. This model checks that contract: each
// port owns its declared storage; `write` (the sender's DMA) appends elements, `acquire` (the
// kernel's lock) throws unless exactly one full buffer arrived, and an output buffer must be
// `read` whole, once, before the next invocation. Double buffering (ping-pong) is the graph's
// business, not the kernel's, so one buffer per port suffices here.
template <typename T>
class input_buffer {
 public:
  input_buffer(std::size_t size, std::string name) : store_(size), name_(std::move(name)) {}
  // `n` elements arrive on the port's stream; more than the declared size is a long transfer
  void write(const T* src, std::size_t n) {
    if (locked_) throw std::runtime_error(name_ + ": written while the kernel holds it");
    if (filled_ + n > store_.size())
      throw std::runtime_error(name_ + ": long transfer, " + std::to_string(filled_ + n) +
                               " elements for a buffer of " + std::to_string(store_.size()));
    for (std::size_t i = 0; i < n; ++i) store_[filled_ + i] = src[i];
    filled_ += n;
  }
  // the kernel fires: only on exactly one full buffer (a short transfer stalls on hardware)
  void acquire() {
    if (filled_ != store_.size())
      throw std::runtime_error(name_ + ": short transfer, " + std::to_string(filled_) +
                               " elements for a buffer of " + std::to_string(store_.size()) +
                               " (the kernel would never fire)");
    locked_ = true;
  }
  // the kernel returned: the buffer is free for the next transfer
  void release() {
    locked_ = false;
    filled_ = 0;
  }
  const T* data() const {
    if (!locked_) throw std::runtime_error(name_ + ": data() outside a kernel invocation");
    return store_.data();
  }
  std::size_t size() const { return store_.size(); }
  // the kernel returned while holding the lock (an async port not released)
  bool held() const { return locked_; }
  // nothing arrived that a kernel has not taken
  bool empty() const { return filled_ == 0 && !locked_; }

 private:
  std::vector<T> store_;
  std::string name_;
  std::size_t filled_ = 0;
  bool locked_ = false;
};

template <typename T>
class output_buffer {
 public:
  output_buffer(std::size_t size, std::string name) : store_(size), name_(std::move(name)) {}
  // the kernel fires: the previous invocation's buffer must have been read (else the graph stalls)
  void acquire() {
    if (pending_) throw std::runtime_error(name_ + ": previous buffer not read before the next invocation");
    locked_ = true;
  }
  // the kernel returned: the whole buffer goes out, whatever the kernel wrote
  void release() {
    if (!locked_) throw std::runtime_error(name_ + ": released without acquire");
    locked_ = false;
    pending_ = true;
  }
  // the reader takes the released buffer: exactly `size` elements (a short or long read leaves
  // words on the stream that the next reader would misread)
  void read(T* dst, std::size_t n) {
    if (!pending_) throw std::runtime_error(name_ + ": read with no buffer released");
    if (n != store_.size())
      throw std::runtime_error(name_ + ": " + std::string(n < store_.size() ? "short" : "long") +
                               " read, " + std::to_string(n) + " elements of a buffer of " +
                               std::to_string(store_.size()));
    for (std::size_t i = 0; i < n; ++i) dst[i] = store_[i];
    pending_ = false;
  }
  T* data() {
    if (!locked_) throw std::runtime_error(name_ + ": data() outside a kernel invocation");
    return store_.data();
  }
  std::size_t size() const { return store_.size(); }
  // at the end of a run every released buffer must have been read
  bool drained() const { return !pending_; }
  bool held() const { return locked_; }

 private:
  std::vector<T> store_;
  std::string name_;
  bool locked_ = false;
  bool pending_ = false;
};

// Asynchronous buffer ports (`adf::input_async_buffer`, `adf::output_async_buffer`): the graph
// does not take their locks around the kernel; the kernel calls acquire() and release() itself,
// and may skip both on an invocation, so an async output sends a buffer only on the invocations
// that acquire it and an async input takes one only when acquired. The contract is the
// synchronous port's (whole buffers); the caller checks held() after the kernel returns.
template <typename T>
class input_async_buffer : public input_buffer<T> {
 public:
  using input_buffer<T>::input_buffer;
};

template <typename T>
class output_async_buffer : public output_buffer<T> {
 public:
  using output_buffer<T>::output_buffer;
};

// One kernel invocation on buffer ports: acquire every port (each input exactly full), call
// `kernel`, release them (each output goes out whole).
template <typename F, typename... P>
void invoke(F&& kernel, P&... ports) {
  (ports.acquire(), ...);
  kernel();
  (ports.release(), ...);
}

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

// Memory-tile access patterns (tiling parameters of a shared_buffer port), as far as the
// generated graphs use them: logged as "access <read|write> <port> <buffer dims> <tile dims>
// <offset>" so that the graph test can read them back.
struct traversing_parameters {
  int dimension = 0;
  int stride = 0;
  int wrap = 0;
};

struct tiling_parameters {
  std::vector<unsigned> buffer_dimension;
  std::vector<unsigned> tiling_dimension;
  std::vector<int> offset;
  std::vector<traversing_parameters> tile_traversal;
  int packet_port_id = -1;
  unsigned repetition = 1;
  unsigned phase = 0;
  std::vector<unsigned> boundary_dimension;
};

struct access_pattern {
  tiling_parameters p;
};
inline access_pattern tiling(tiling_parameters p) { return {std::move(p)}; }

struct access_sink {
  std::string what;
  void operator=(const access_pattern& a) {
    auto join = [](const auto& v) {
      std::string s;
      for (auto x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
      return s;
    };
    graph_log().push_back("access " + what + " " + join(a.p.buffer_dimension) + " " +
                          join(a.p.tiling_dimension) + " " + join(a.p.offset));
  }
};
inline access_sink write_access(const endpoint& e) { return {"write " + e.str()}; }
inline access_sink read_access(const endpoint& e) { return {"read " + e.str()}; }

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
