// Picking the next token from logits: greedy (temperature 0: the largest logit, the lowest id on
// ties) or sampling from softmax(logits / temperature) restricted to the smallest set of most
// likely tokens whose probability reaches top_p (nucleus sampling), from a seeded generator.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace lct {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy
  double top_p = 1;        // in (0, 1]
  uint64_t seed = 0;
};

class Sampler {
 public:
  // InputError for temperature < 0 or top_p outside (0, 1].
  explicit Sampler(const SamplingOptions& o);
  int32_t pick(const std::vector<double>& logits);

 private:
  SamplingOptions o_;
  Rng rng_;
};

// The largest logit's id (lowest id on ties), and the gap between the two largest logits.
int32_t argmax(const std::vector<double>& logits, double* margin = nullptr);

}  // namespace lct
