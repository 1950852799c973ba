#include "data/sample_order.h"

#include "core/error.h"
#include "core/rng.h"

namespace lct {

namespace {

constexpr int kRounds = 6;

uint64_t fmix64(uint64_t z) {  // MurmurHash3's finaliser: a good 64-bit mixer
  z ^= z >> 33;
  z *= 0xff51afd7ed558ccdull;
  z ^= z >> 33;
  z *= 0xc4ceb9fe1a85ec53ull;
  return z ^ (z >> 33);
}

}  // namespace

SampleOrder::SampleOrder(int64_t samples_per_epoch, uint64_t seed, bool shuffle)
    : n_(samples_per_epoch), seed_(seed), shuffle_(shuffle) {
  LCT_CHECK(n_ > 0, "an epoch needs at least one sample");
  int bits = 1;
  while (bits < 62 && (int64_t(1) << bits) < n_) ++bits;
  half_bits_ = (bits + 1) / 2;
  half_mask_ = (uint64_t(1) << half_bits_) - 1;
}

uint64_t SampleOrder::encrypt(uint64_t x, const uint64_t* keys) const {
  uint64_t left = x >> half_bits_, right = x & half_mask_;
  for (int r = 0; r < kRounds; ++r) {
    const uint64_t f = fmix64(right ^ keys[r]) & half_mask_;
    const uint64_t next = left ^ f;
    left = right;
    right = next;
  }
  return (left << half_bits_) | right;
}

int64_t SampleOrder::sample_at(int64_t g) const {
  LCT_CHECK(g >= 0, "negative sample index ", g);
  const uint64_t epoch = uint64_t(g / n_);
  const uint64_t pos = uint64_t(g % n_);
  if (!shuffle_ || n_ == 1) return int64_t(pos);
  uint64_t keys[kRounds];
  uint64_t state = seed_ ^ (0x9e3779b97f4a7c15ull * (epoch + 1));
  for (auto& k : keys) k = splitmix64(state);
  // The network permutes [0, 4^half_bits), at most 4n values: walking from a value below n to the
  // next value below n along the permutation's cycle is a permutation of [0, n).
  uint64_t y = encrypt(pos, keys);
  while (y >= uint64_t(n_)) y = encrypt(y, keys);
  return int64_t(y);
}

}  // namespace lct
