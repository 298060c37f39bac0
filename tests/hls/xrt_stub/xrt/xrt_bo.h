// Stand-in for syntax checks only (see xrt_device.h).
#pragma once
#include <cstddef>
#include "xrt_device.h"

enum xclBOSyncDirection { XCL_BO_SYNC_BO_TO_DEVICE = 0, XCL_BO_SYNC_BO_FROM_DEVICE = 1 };

namespace xrt {
class bo {
 public:
  using memory_group = unsigned int;
  bo(const device& d, std::size_t size, memory_group group);
  template <typename T>
  T map();
  void sync(xclBOSyncDirection dir);
};
}  // namespace xrt
