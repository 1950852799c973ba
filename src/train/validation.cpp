#include "train/validation.h"

#include <cmath>
#include <vector>

#include "parallel/agree.h"
#include "train/batch.h"

namespace lct {

ValidationResult validate(Llama& model, DataLoader& valid, ParallelContext& ctx, int64_t micro_batch,
                          const BatchLayout& layout) {
  const int64_t seq_len = layout.seq_len;
  valid.seek(0);
  std::vector<Sample> samples;
  agree(ctx.world_mpi, [&] { samples = valid.next_step(); });
  std::vector<double> sum(kValidBuckets + 1, 0.0), count(kValidBuckets + 1, 0.0);
  for (size_t first = 0; first + size_t(micro_batch) <= samples.size(); first += size_t(micro_batch)) {
    const MicroBatch mb = make_micro_batch(samples, first, micro_batch, layout);
    const std::vector<int32_t> pos = token_indices(mb, layout);
    model.forward(mb);
    const std::vector<double> tl = model.token_losses();
    for (size_t i = 0; i < tl.size(); ++i) {
      if (std::isnan(tl[i]) || pos[i] < 0) continue;
      const int b = int(int64_t(pos[i]) * kValidBuckets / seq_len);
      sum[size_t(b)] += tl[i];
      count[size_t(b)] += 1;
    }
  }
  for (int b = 0; b < kValidBuckets; ++b) sum[kValidBuckets] += sum[size_t(b)], count[kValidBuckets] += count[size_t(b)];
  // tp ranks hold the same tokens: reduce over dp x cp only.
  for (int b = 0; b <= kValidBuckets; ++b) {
    sum[size_t(b)] = ctx.dpcp->all_reduce_scalar(sum[size_t(b)]);
    count[size_t(b)] = ctx.dpcp->all_reduce_scalar(count[size_t(b)]);
  }
  ValidationResult r;
  r.tokens = int64_t(count[kValidBuckets]);
  r.loss = r.tokens > 0 ? sum[kValidBuckets] / count[kValidBuckets] : 0.0;
  for (int b = 0; b < kValidBuckets; ++b) r.by_bucket[b] = count[size_t(b)] > 0 ? sum[size_t(b)] / count[size_t(b)] : 0.0;
  return r;
}

}  // namespace lct
