// x86 stand-in for the subset of Vitis HLS <hls_stream.h> that codesign's generated PL kernels
// use: an unbounded FIFO with write/read/empty/size and the << / >> operators. Reading an empty
// stream is a deadlock on hardware; here it throws std::runtime_error naming the stream, so a
// wrong beat count fails the x86 check instead of hanging. Plain C++20, not Xilinx's header.
#pragma once

#include <deque>
#include <stdexcept>
#include <string>
#include <utility>

namespace hls {

template <typename T>
class stream {
 public:
  stream() = default;
  explicit stream(const char* name) : name_(name) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  void write(const T& v) { q_.push_back(v); }
  T read() {
    if (q_.empty()) throw std::runtime_error("read from empty hls::stream " + name_);
    T v = std::move(q_.front());
    q_.pop_front();
    return v;
  }
  void read(T& v) { v = read(); }
  bool empty() const { return q_.empty(); }
  bool full() const { return false; }
  std::size_t size() const { return q_.size(); }
  stream& operator<<(const T& v) {
    write(v);
    return *this;
  }
  stream& operator>>(T& v) {
    v = read();
    return *this;
  }

 private:
  std::string name_ = "(unnamed)";
  std::deque<T> q_;
};

}  // namespace hls
