// Stand-in for syntax checks only (see xrt_device.h).
#pragma once
#include <string>
#include "xrt_bo.h"
#include "xrt_device.h"
#include "xrt_hw_context.h"

namespace xrt {
class kernel {
 public:
  kernel(const hw_context& context, const std::string& name);
  int group_id(int argno) const;
};
class run {
 public:
  explicit run(const kernel& k);
  template <typename T>
  void set_arg(int index, T&& value);
  void start();
  int wait();
};
}  // namespace xrt
