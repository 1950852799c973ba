// The compute backend of one rank and its communicators on device buffers, built the same way by
// training, --eval and every other entry point (one place decides device, attention kernels and
// how device buffers travel).
#pragma once

#include <memory>

#include "deck/config.h"
#include "ops/ops.h"
#include "parallel/context.h"

namespace lct {

// Makes the rank's Ops (run.device, model.attention_impl, run.attention_tile) collectively, and
// on a device backend replaces ctx's tp/cp/dp/dpcp communicators by device communicators
// (parallel.device_comm: nccl, or mpi = staged through host memory).
std::unique_ptr<Ops> make_rank_backend(const Config& c, ParallelContext& ctx);

}  // namespace lct
