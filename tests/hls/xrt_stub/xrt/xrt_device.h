// A tiny stand-in for XRT's headers, only so that tests/hls/test_vitis.py can check the
// generated host code's syntax and types with g++ -fsyntax-only. It declares the few members
// the host uses, with the signatures of XRT's native C++ API; nothing here runs.
#pragma once
#include <string>

namespace xrt {
class uuid {};
class xclbin {
 public:
  explicit xclbin(const std::string& path);
};
class device {
 public:
  explicit device(unsigned int index);
  uuid register_xclbin(const xclbin& x);
};
}  // namespace xrt
