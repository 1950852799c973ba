// The order in which samples are visited. Global sample index g belongs to epoch e = g / n (n =
// samples per epoch) and names sample perm_e(g mod n) of the token stream, where perm_e is a
// pseudo-random permutation of [0, n) keyed by (seed, e): a 6-round Feistel network on the smallest
// even number of bits covering n, cycle-walked back into [0, n). It needs O(1) memory and no
// precomputation, so any g can be looked up directly (resume, any dp, any prefetch depth).
#pragma once

#include <cstdint>

namespace lct {

class SampleOrder {
 public:
  SampleOrder(int64_t samples_per_epoch, uint64_t seed, bool shuffle);
  int64_t samples_per_epoch() const { return n_; }
  // The stream sample visited at global index g >= 0.
  int64_t sample_at(int64_t g) const;

 private:
  uint64_t encrypt(uint64_t x, const uint64_t* keys) const;

  int64_t n_;
  uint64_t seed_;
  bool shuffle_;
  int half_bits_ = 0;
  uint64_t half_mask_ = 0;
};

}  // namespace lct
