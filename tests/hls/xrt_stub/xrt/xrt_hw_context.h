// Stand-in for syntax checks only (see xrt_device.h).
#pragma once
#include "xrt_device.h"

namespace xrt {
class hw_context {
 public:
  hw_context(const device& d, const uuid& xclbin_id);
};
}  // namespace xrt
