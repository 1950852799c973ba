#include "infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace lct {

int32_t argmax(const std::vector<double>& logits, double* margin) {
  LCT_CHECK(!logits.empty(), "argmax of no logits");
  size_t best = 0;
  double second = -INFINITY;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) {
      second = logits[best];
      best = i;
    } else {
      second = std::max(second, logits[i]);
    }
  }
  if (margin) *margin = logits[best] - second;
  return int32_t(best);
}

Sampler::Sampler(const SamplingOptions& o) : o_(o), rng_(o.seed, 0x5a3b1e) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw InputError(str("generate.temperature = ", o.temperature, " must be >= 0 (0 = greedy)"));
  if (!(o.top_p > 0 && o.top_p <= 1)) throw InputError(str("generate.top_p = ", o.top_p, " must be in (0, 1]"));
}

int32_t Sampler::pick(const std::vector<double>& logits) {
  if (o_.temperature == 0) return argmax(logits);
  const double mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp((logits[i] - mx) / o_.temperature);
  std::vector<int32_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  // Most likely first; equal probabilities by id, so the draw is reproducible.
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[size_t(a)] != p[size_t(b)] ? p[size_t(a)] > p[size_t(b)] : a < b; });
  size_t keep = 0;
  double mass = 0;
  while (keep < order.size() && (keep == 0 || mass < o_.top_p * sum)) mass += p[size_t(order[keep++])];
  double u = rng_.uniform() * mass;
  for (size_t i = 0; i < keep; ++i) {
    u -= p[size_t(order[i])];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace lct
