// From a dp replica's samples to this rank's micro-batches: each sequence is cut by the cp
// sharding (zigzag chunks) and targets under loss mask 0 become ignored (-1).
#pragma once

#include <cstdint>
#include <vector>

#include "data/loader.h"
#include "model/llama.h"

namespace lct {

// samples[first, first + B) -> B sequences x positions.size() local tokens.
MicroBatch make_micro_batch(const std::vector<Sample>& samples, size_t first, int64_t B,
                            const std::vector<int32_t>& positions);

// Targets that count in the loss (>= 0).
int64_t count_targets(const MicroBatch& mb);

}  // namespace lct
