// Stand-in for syntax checks only (see xrt_device.h).
#pragma once
#include <string>
#include "xrt_device.h"
#include "xrt_hw_context.h"

namespace xrt {
class graph {
 public:
  graph(const hw_context& context, const std::string& name);
  void run(int iterations);
  void wait();
};
}  // namespace xrt
