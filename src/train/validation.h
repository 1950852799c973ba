// Validation loss over data.valid (the same samples every time), overall and by position bucket:
// does the loss keep falling with more context? Collective over the stage's ranks.
#pragma once

#include <cstdint>

#include "data/loader.h"
#include "model/llama.h"
#include "parallel/context.h"
#include "train/batch.h"

namespace lct {

constexpr int kValidBuckets = 8;

struct ValidationResult {
  double loss = 0;
  int64_t tokens = 0;
  double by_bucket[kValidBuckets] = {};  // buckets of seq_len / kValidBuckets positions
};

// Buckets are by the token's index in its sample; `layout` cuts the samples as training does.
ValidationResult validate(Llama& model, DataLoader& valid, ParallelContext& ctx, int64_t micro_batch,
                          const BatchLayout& layout);

}  // namespace lct
