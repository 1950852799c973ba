#include "train/batch.h"

#include "core/error.h"

namespace lct {

MicroBatch make_micro_batch(const std::vector<Sample>& samples, size_t first, int64_t B,
                            const std::vector<int32_t>& positions) {
  LCT_CHECK(first + size_t(B) <= samples.size(), "micro-batch beyond the step's samples");
  MicroBatch mb;
  mb.inputs.reserve(size_t(B) * positions.size());
  mb.targets.reserve(size_t(B) * positions.size());
  for (int64_t b = 0; b < B; ++b) {
    const Sample& s = samples[first + size_t(b)];
    for (int32_t p : positions) {
      LCT_CHECK(size_t(p) + 1 < s.tokens.size(), "position ", p, " beyond a sample of ", s.tokens.size());
      mb.inputs.push_back(s.tokens[size_t(p)]);
      const bool counts = s.loss_mask.empty() || s.loss_mask[size_t(p) + 1] != 0;
      mb.targets.push_back(counts ? s.tokens[size_t(p) + 1] : -1);
    }
  }
  return mb;
}

int64_t count_targets(const MicroBatch& mb) {
  int64_t n = 0;
  for (int32_t t : mb.targets) n += t >= 0;
  return n;
}

}  // namespace lct
