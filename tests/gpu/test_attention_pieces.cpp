// The cuDNN path's split of attention by positions into index-masked pieces
// (cuda/attention_pieces.h): every visible (query, key) pair lies in exactly one piece and no
// invisible pair in any. Host-only; runs everywhere.
#include <gtest/gtest.h>

#include <numeric>

#include "core/rng.h"
#include "cuda/attention_pieces.h"

namespace lct::cuda {
namespace {

void check_cover(const std::vector<int32_t>& qpos, const std::vector<int32_t>& kpos, size_t max_pieces) {
  const size_t nq = qpos.size(), nk = kpos.size();
  std::vector<int> count(nq * nk, 0);
  const std::vector<AttnPiece> pieces = attention_pieces(qpos, kpos);
  EXPECT_LE(pieces.size(), max_pieces);
  for (const AttnPiece& p : pieces) {
    ASSERT_GT(p.nq, 0);
    ASSERT_GT(p.nk, 0);
    ASSERT_LE(p.q0 + p.nq, int64_t(nq));
    ASSERT_LE(p.k0 + p.nk, int64_t(nk));
    for (int64_t i = 0; i < p.nq; ++i)
      for (int64_t j = 0; j < p.nk; ++j)
        if (!p.causal || j <= i) ++count[size_t(p.q0 + i) * nk + size_t(p.k0 + j)];
  }
  for (size_t i = 0; i < nq; ++i)
    for (size_t j = 0; j < nk; ++j)
      ASSERT_EQ(count[i * nk + j], kpos[j] <= qpos[i] ? 1 : 0) << "query " << i << " (pos " << qpos[i] << "), key "
                                                              << j << " (pos " << kpos[j] << ")";
}

std::vector<int32_t> range(int32_t first, int32_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}
std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(AttentionPieces, CausalIsOneTopLeftPiece) {
  const auto p = range(0, 100);
  check_cover(p, p, 1);
  EXPECT_TRUE(attention_pieces(p, p)[0].causal);
}

TEST(AttentionPieces, KeysInThePastAreOnePlainPiece) {
  check_cover(range(100, 50), range(0, 100), 1);
  check_cover(range(0, 50), range(100, 30), 0);  // all keys in the future: nothing
}

TEST(AttentionPieces, ZigzagRingBlocks) {
  // cp = 4, chunk 16: rank r holds chunks r and 7 - r.
  const int32_t c = 16, cp = 4;
  for (int32_t r = 0; r < cp; ++r)
    for (int32_t s = 0; s < cp; ++s)
      check_cover(concat(range(r * c, c), range((2 * cp - 1 - r) * c, c)),
                  concat(range(s * c, c), range((2 * cp - 1 - s) * c, c)), 8);
}

TEST(AttentionPieces, OverlappingRunsOfDifferentLengths) {
  check_cover(range(10, 30), range(0, 25), 2);   // keys start before the queries
  check_cover(range(0, 30), range(10, 40), 1);   // keys start inside the queries
  check_cover(range(5, 3), range(0, 100), 2);
  check_cover(range(0, 1), range(0, 1), 1);
}

TEST(AttentionPieces, RandomChunkLayouts) {
  Rng rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<int32_t> q, k;
    for (int c = 0; c < 3; ++c) {
      q = concat(q, range(int32_t(rng.below(200)), int32_t(1 + rng.below(20))));
      k = concat(k, range(int32_t(rng.below(200)), int32_t(1 + rng.below(20))));
    }
    check_cover(q, k, 3 * 3 * 2);
  }
}

}  // namespace
}  // namespace lct::cuda
