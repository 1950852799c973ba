// Data blends, written as Megatron writes them, weight first: data.train = 0.7 web/*.bin, 0.3 chat.h5.
// Each comma-separated part "WEIGHT PATH..." is one dataset (its paths: files, globs or folders,
// joined as one token stream); weights are fractions of samples (normalised to sum 1). A list
// without weights is one dataset, as before.
//
// Which dataset global sample g comes from is Megatron's greedy interleave: sample g goes to the
// dataset whose share lags its weight the most (largest w_d (g + 1) - n_d, ties to the first), so
// every prefix of the sample sequence holds each dataset's share to within one sample. It depends
// only on the weights and g: the same at any dp, any prefetch depth, after any resume. Within a
// dataset its own SampleOrder (seeded by run.seed and the dataset's index) visits its samples.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lct {

struct BlendPart {
  double weight = 1;
  std::vector<std::string> paths;
};

// Parses the list items of `key`. No item with a weight: one part of weight 1 holding every item.
// InputError naming the key and the item: a weight that is not a positive number, a weight that
// names no file, a blend where some parts have a weight and others do not.
std::vector<BlendPart> parse_blend(const std::vector<std::string>& items, const std::string& key = "data.train");

class BlendOrder {
 public:
  explicit BlendOrder(std::vector<double> weights);  // > 0 each; normalised here
  // (dataset, index of the sample within that dataset) of global sample g >= 0. Thread-safe.
  std::pair<int, int64_t> at(int64_t g) const;
  size_t size() const { return w_.size(); }

 private:
  static constexpr int64_t kStride = 4096;  // per-dataset counts are kept every kStride samples
  // Counts before sample k * kStride, for k = 0, 1, ... (extended on demand).
  void extend_to(size_t k) const;
  int pick(int64_t g, const std::vector<int64_t>& counts) const;

  std::vector<double> w_;
  mutable std::mutex mu_;
  mutable std::vector<std::vector<int64_t>> marks_;
};

}  // namespace lct
