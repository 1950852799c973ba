// Validation loss over data.valid (the same samples every time), overall and by position bucket:
// does the loss keep falling with more context? Collective over the stage's ranks.
#pragma once

#include <cstdint>

#include "data/loader.h"
#include "model/llama.h"
#include "parallel/context.h"

namespace lct {

constexpr int kValidBuckets = 8;

struct ValidationResult {
  double loss = 0;
  int64_t tokens = 0;
  double by_bucket[kValidBuckets] = {};  // buckets of seq_len / kValidBuckets positions
};

ValidationResult validate(Llama& model, DataLoader& valid, ParallelContext& ctx, int64_t micro_batch, int64_t seq_len);

}  // namespace lct
