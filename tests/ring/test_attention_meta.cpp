// The attention descriptor (attention/attention_meta.h): where documents begin, the slots each
// ring position holds under zigzag and doc_zigzag, document starts and RoPE positions, and the
// visible-pair count the ring skips hops by (against a brute-force count).
#include <gtest/gtest.h>

#include <algorithm>

#include "attention/attention_meta.h"
#include "core/error.h"
#include "core/rng.h"

namespace lct {
namespace {

TEST(AttentionMeta, DocumentsBeginAfterEodAndAtBos) {
  const std::vector<int32_t> t = {5, 9, 1, 7, 9, 9, 2, 1, 3};  // 8 inputs + the last target
  EXPECT_EQ(document_begins(t.data(), 8, 9, -1), (std::vector<int32_t>{0, 2, 5, 6}));
  EXPECT_EQ(document_begins(t.data(), 8, -1, 1), (std::vector<int32_t>{0, 2, 7}));
  EXPECT_EQ(document_begins(t.data(), 8, 9, 1), (std::vector<int32_t>{0, 2, 5, 6, 7}));
  EXPECT_EQ(document_begins(t.data(), 8, -1, -1), (std::vector<int32_t>{0}));
}

TEST(AttentionMeta, ZigzagKeepsTokenSlotsAndResetsPositions) {
  const AttentionMeta m = document_meta({{0, 5, 11}}, 16, 2, CpSharding::Zigzag, true, true);
  ASSERT_EQ(m.check(), "");
  EXPECT_EQ(m.rows[0].slots[0], (std::vector<int32_t>{0, 1, 2, 3, 12, 13, 14, 15}));
  EXPECT_EQ(m.rows[0].doc_start[4], 0);
  EXPECT_EQ(m.rows[0].doc_start[5], 5);
  EXPECT_EQ(m.rows[0].doc_start[13], 11);
  EXPECT_EQ(m.rows[0].rope_pos[13], 2);
  EXPECT_EQ(m.rope_positions(1), (std::vector<int32_t>{4, 0, 1, 2, 3, 4, 5, 0}));  // slots 4..11
  const AttentionMeta plain = document_meta({{0, 5, 11}}, 16, 2, CpSharding::Zigzag, false, false);
  EXPECT_EQ(plain.rows[0].rope_pos[13], 13);
  EXPECT_EQ(plain.rows[0].doc_start[13], 0);
  EXPECT_FALSE(plain.per_row());
  EXPECT_TRUE(m.per_row());
}

TEST(AttentionMeta, DocZigzagPadsEachDocumentAndCutsTheTail) {
  // cp 2: documents of 5, 3, 6, 6 tokens padded to 8, 4, 8 and the last one cut to the 4 slots left.
  const AttentionMeta m = document_meta({{0, 5, 8, 14}}, 24, 2, CpSharding::DocZigzag, true, true);
  ASSERT_EQ(m.check(), "");
  const SequenceLayout& r = m.rows[0];
  // Rank 0 holds pieces 0 and 3 of each document (pieces of 2, 1, 2, 1 slots).
  EXPECT_EQ(r.slots[0], (std::vector<int32_t>{0, 1, 6, 7, 8, 11, 12, 13, 18, 19, 20, 23}));
  EXPECT_EQ(r.token[5], -1);  // padding after the 5-token document
  EXPECT_EQ(r.token[8], 5);
  EXPECT_EQ(r.token[12], 8);
  EXPECT_EQ(r.token[23], 17);  // the last document keeps 4 of its 6 tokens
  EXPECT_EQ(r.doc_start[23], 20);
  EXPECT_EQ(r.rope_pos[23], 3);
  EXPECT_TRUE(m.slots_differ);
  EXPECT_THROW(document_meta({{0, 5}}, 24, 2, CpSharding::DocZigzag, false, false), InputError);
}

TEST(AttentionMeta, VisiblePairsMatchABruteForceCount) {
  Rng rng(3);
  for (CpSharding sh : {CpSharding::Zigzag, CpSharding::Contiguous, CpSharding::DocZigzag})
    for (int cp : {1, 2, 4}) {
      std::vector<std::vector<int32_t>> begins(2);
      for (auto& b : begins) {
        b = {0};
        for (int32_t t = 1; t < 64; ++t)
          if (rng.below(7) == 0) b.push_back(t);
      }
      const AttentionMeta m = document_meta(begins, 64, cp, sh, true, false);
      ASSERT_EQ(m.check(), "");
      int64_t total = 0;
      for (int qr = 0; qr < cp; ++qr)
        for (int kr = 0; kr < cp; ++kr) {
          int64_t brute = 0;
          for (const SequenceLayout& row : m.rows)
            for (int32_t q : row.slots[size_t(qr)])
              for (int32_t k : row.slots[size_t(kr)]) brute += row.doc_start[size_t(q)] <= k && k <= q;
          EXPECT_EQ(m.visible_pairs(qr, kr), brute) << cp_sharding_name(sh) << " cp " << cp;
          total += brute;
        }
      // Every pair inside a document (padding included) is counted exactly once over the ring.
      int64_t want = 0;
      for (const SequenceLayout& row : m.rows)
        for (int32_t q = 0; q < 64; ++q) want += q - row.doc_start[size_t(q)] + 1;
      EXPECT_EQ(total, want);
    }
}

// merge_a2a (issue 19): ring position r of the merged layout holds the slots of sharding indices
// U r .. U r + U - 1 in that order; per-slot data is kept; plain zigzag merged is a load-balanced
// zigzag ring of 2R big chunks (the same slot set as a zigzag over R); the merged visible pairs
// are the sums of the originals.
TEST(AttentionMeta, MergeForAllToAllConcatenatesTheGroupsShards) {
  Rng rng(5);
  for (CpSharding sh : {CpSharding::Zigzag, CpSharding::Contiguous, CpSharding::DocZigzag})
    for (int cp : {2, 4, 8})
      for (int U = 1; U <= cp; U *= 2) {
        SCOPED_TRACE(::testing::Message() << cp_sharding_name(sh) << " cp " << cp << " U " << U);
        std::vector<std::vector<int32_t>> begins(2);
        for (auto& b : begins) {
          b = {0};
          for (int32_t t = 1; t < 64; ++t)
            if (rng.below(9) == 0) b.push_back(t);
        }
        const AttentionMeta m = document_meta(begins, 64, cp, sh, true, true);
        const AttentionMeta g = merge_a2a(m, U);
        const int R = cp / U;
        ASSERT_EQ(g.check(), "");
        EXPECT_EQ(g.cp, R);
        EXPECT_EQ(g.T, m.T);
        EXPECT_EQ(g.per_row(), m.per_row());
        for (size_t b = 0; b < m.rows.size(); ++b) {
          EXPECT_EQ(g.rows[b].doc_start, m.rows[b].doc_start);
          EXPECT_EQ(g.rows[b].rope_pos, m.rows[b].rope_pos);
          EXPECT_EQ(g.rows[b].token, m.rows[b].token);
          for (int r = 0; r < R; ++r) {
            std::vector<int32_t> want;
            for (int u = 0; u < U; ++u)
              want.insert(want.end(), m.rows[b].slots[size_t(U * r + u)].begin(), m.rows[b].slots[size_t(U * r + u)].end());
            EXPECT_EQ(g.rows[b].slots[size_t(r)], want);
          }
        }
        for (int qr = 0; qr < R; ++qr)
          for (int kr = 0; kr < R; ++kr) {
            int64_t sum = 0;
            for (int a = 0; a < U; ++a)
              for (int c = 0; c < U; ++c) sum += m.visible_pairs(U * qr + a, U * kr + c);
            EXPECT_EQ(g.visible_pairs(qr, kr), sum);
          }
        if (sh == CpSharding::Zigzag) {
          const AttentionMeta plain = plain_meta(2, 64, R, CpSharding::Zigzag), merged = merge_a2a(plain_meta(2, 64, cp, CpSharding::Zigzag), U);
          for (int r = 0; r < R; ++r) {
            std::vector<int32_t> a = plain.rows[0].slots[size_t(r)], b = merged.rows[0].slots[size_t(r)];
            std::sort(a.begin(), a.end());
            std::sort(b.begin(), b.end());
            EXPECT_EQ(a, b) << "ring position " << r << " holds big chunks r and 2R-1-r";
          }
        }
      }
  EXPECT_THROW(merge_a2a(plain_meta(1, 64, 4, CpSharding::Zigzag), 3), Error);
}

}  // namespace
}  // namespace lct
