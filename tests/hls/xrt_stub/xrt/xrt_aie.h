// Stand-in for syntax checks only (see xrt_device.h).
#pragma once
#include <string>
#include "xrt_device.h"

namespace xrt {
class graph {
 public:
  graph(const device& d, const uuid& id, const std::string& name);
  void run(int iterations);
  void wait();
};
}  // namespace xrt
