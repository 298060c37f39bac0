// codesign x86 model of the AIE API's ADF glue: accumulators over cascade ports.
// (See aie.hpp for what this header set is and is not.)
#pragma once

#include <adf.h>

#include "aie.hpp"

// Read N accumulator lanes from a cascade port (the AIE API's readincr_v on input_cascade).
template <unsigned N, typename Tag>
aie::accum<Tag, N> readincr_v(input_cascade<Tag>* in) {
  aie::accum<Tag, N> acc;
  for (unsigned i = 0; i < N; ++i) {
    if (in->link->q.empty()) throw std::runtime_error("cascade read from an empty queue");
    acc.set_lane(in->link->q.front(), i);
    in->link->q.pop_front();
  }
  return acc;
}

// Write an accumulator to a cascade port (the AIE API's writeincr on output_cascade).
template <typename Tag, unsigned N>
void writeincr(output_cascade<Tag>* out, const aie::accum<Tag, N>& acc) {
  for (unsigned i = 0; i < N; ++i) out->link->q.push_back(acc.get(i));
}
