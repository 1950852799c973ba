// Sums a host vector of doubles over a communicator through the backend's memory (a device buffer
// on cuda, where the communicator reduces): the evaluations' per-prompt results, each computed by
// one replica or one rank. Collective: every rank of `comm` calls it with a vector of the same size.
// The buffer is freed also when the reduction throws.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/owned_buffers.h"
#include "parallel/comm.h"

namespace lct {

inline void sum_over(Ops& ops, Comm& comm, std::vector<double>& v) {
  OwnedBuffers buffer(ops);
  Tensor t = buffer.alloc(DType::F64, {int64_t(v.size())});
  ops.from_host(t, v.data());
  comm.all_reduce(t);
  ops.to_host(v.data(), t);
}

}  // namespace lct
