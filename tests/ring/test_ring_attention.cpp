// Ring attention over the cp ranks equals single-rank blockwise attention: output, log-sum-exp,
// dQ, dK, dV (fp32, relative error <= 1e-5), for GQA ratios 1 and 4, several head dims, chunk
// lengths that are not a multiple of the attention tile; and the communication pattern: only
// point-to-point transfers to the ring neighbour, cp-1 K/V blocks per pass, dK/dV accumulators
// returning home, at most two remote blocks held; zigzag balances the causal work.
#include <gtest/gtest.h>
#include <mpi.h>

#include "attention/ring_attention.h"
#include "attention/sharding.h"
#include "host_tensor.h"
#include "parallel/context.h"
#include "test_util.h"

namespace lct {
namespace {

using test::HostTensor;

struct Case {
  int64_t B, chunk, Hq, Hkv, D;
  int tile;
};

// Rows `pos` of a [B, T, H, D] tensor.
HostTensor<float> take_rows(const HostTensor<float>& x, const std::vector<int32_t>& pos, int64_t B, int64_t T,
                            int64_t H, int64_t D) {
  HostTensor<float> out({B, int64_t(pos.size()), H, D});
  for (int64_t b = 0; b < B; ++b)
    for (size_t i = 0; i < pos.size(); ++i)
      for (int64_t e = 0; e < H * D; ++e)
        out[(b * int64_t(pos.size()) + int64_t(i)) * H * D + e] = x.v[size_t((b * T + pos[i]) * H * D + e)];
  return out;
}

class Ring : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    ParallelConfig pc;
    MPI_Comm_size(MPI_COMM_WORLD, &pc.cp);
    ctx = make_parallel_context(MPI_COMM_WORLD, pc);
  }
  std::unique_ptr<ParallelContext> ctx;
};

TEST_P(Ring, EqualsSingleRankBlockwiseAttention) {
  const Case c = GetParam();
  const int cp = ctx->cp->size(), r = ctx->cp->rank();
  const int64_t T = 2 * cp * c.chunk, Tl = T / cp;
  auto ops = make_cpu_ops(DType::F32, c.tile);
  Rng rng(42);  // the same full tensors on every rank
  HostTensor<float> q({c.B, T, c.Hq, c.D}), k({c.B, T, c.Hkv, c.D}), v({c.B, T, c.Hkv, c.D}), dout({c.B, T, c.Hq, c.D});
  q.randn(rng);
  k.randn(rng);
  v.randn(rng);
  dout.randn(rng);
  HostTensor<int32_t> all_pos({T});
  for (int64_t t = 0; t < T; ++t) all_pos[size_t(t)] = int32_t(t);
  // Reference: one rank, the whole sequence.
  HostTensor<float> out({c.B, T, c.Hq, c.D}), lse({c.B, c.Hq, T});
  ops->attention_forward(out, lse, q, k, v, all_pos, all_pos);
  HostTensor<float> dq({c.B, T, c.Hq, c.D}), dk({c.B, T, c.Hkv, c.D}), dv({c.B, T, c.Hkv, c.D});
  ops->attention_backward(dq, dk, dv, dout, q, k, v, all_pos, all_pos, out, lse);

  // This rank's zigzag chunks.
  const std::vector<int32_t> pos = shard_positions(T, cp, r, true);
  HostTensor<float> lq = take_rows(q, pos, c.B, T, c.Hq, c.D), ldout = take_rows(dout, pos, c.B, T, c.Hq, c.D);
  HostTensor<float> lk = take_rows(k, pos, c.B, T, c.Hkv, c.D), lv = take_rows(v, pos, c.B, T, c.Hkv, c.D);
  HostTensor<float> kv({2, c.B, Tl, c.Hkv, c.D});
  std::copy(lk.v.begin(), lk.v.end(), kv.v.begin());
  std::copy(lv.v.begin(), lv.v.end(), kv.v.begin() + long(lk.size()));

  RingShape rs;
  rs.B = c.B;
  rs.T = T;
  rs.Hq = c.Hq;
  rs.Hkv = c.Hkv;
  rs.D = c.D;
  rs.cp = cp;
  RingAttention ring(*ops, ctx->cp.get(), r, rs);
  ctx->traffic->reset();
  HostTensor<float> rout({c.B, Tl, c.Hq, c.D}), rlse({c.B, c.Hq, Tl});
  ring.forward(rout, rlse, lq, kv);
  HostTensor<float> rdq({c.B, Tl, c.Hq, c.D}), rdkv({2, c.B, Tl, c.Hkv, c.D});
  ring.backward(rdq, rdkv, ldout, lq, kv, rout, rlse);

  // Compare with the reference rows of this rank.
  EXPECT_LT(test::rel_error(rout.v, take_rows(out, pos, c.B, T, c.Hq, c.D).v), 1e-5);
  std::vector<float> ref_lse;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.Hq; ++h)
      for (int32_t p : pos) ref_lse.push_back(lse.v[size_t((b * c.Hq + h) * T + p)]);
  EXPECT_LT(test::rel_error(rlse.v, ref_lse), 1e-5);
  EXPECT_LT(test::rel_error(rdq.v, take_rows(dq, pos, c.B, T, c.Hq, c.D).v), 1e-5);
  HostTensor<float> rk({c.B, Tl, c.Hkv, c.D}), rv({c.B, Tl, c.Hkv, c.D});
  std::copy(rdkv.v.begin(), rdkv.v.begin() + long(rk.size()), rk.v.begin());
  std::copy(rdkv.v.begin() + long(rk.size()), rdkv.v.end(), rv.v.begin());
  EXPECT_LT(test::rel_error(rk.v, take_rows(dk, pos, c.B, T, c.Hkv, c.D).v), 1e-5);
  EXPECT_LT(test::rel_error(rv.v, take_rows(dv, pos, c.B, T, c.Hkv, c.D).v), 1e-5);

  // The point-to-point pattern: only to the ring's next rank; forward cp-1 K/V blocks, backward
  // cp-1 K/V blocks and cp dK/dV accumulators (fp32, the size of a K/V block here).
  const int64_t block = int64_t(kv.size()) * 4;
  const auto peers = ctx->traffic->p2p_peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers.begin()->first, ctx->me().cp_next);
  EXPECT_EQ(peers.begin()->second, (2 * (cp - 1) + cp) * block);
  EXPECT_EQ(ring.stats.blocks_sent, 2 * (cp - 1));
  EXPECT_EQ(ring.stats.dkv_sent, cp);
  EXPECT_LE(ring.stats.max_remote_blocks, 2);
  EXPECT_EQ(ctx->traffic->collective_bytes(), 0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Ring,
                         ::testing::Values(Case{1, 13, 2, 2, 8, 8},     // GQA 1, chunk not a multiple of the tile
                                           Case{2, 9, 4, 1, 16, 4},     // GQA 4
                                           Case{1, 20, 8, 2, 32, 16}));  // GQA 4, head dim 32

TEST(RingBalance, ZigzagGivesEveryRankTheSameCausalWork) {
  int cp = 1, r = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &cp);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  const int64_t T = 2 * cp * 64;
  auto work = [&](bool zigzag) {
    const auto mine = shard_positions(T, cp, r, zigzag);
    int64_t n = 0;
    for (int src = 0; src < cp; ++src) n += causal_pairs(mine, shard_positions(T, cp, src, zigzag));
    std::vector<int64_t> all(static_cast<size_t>(cp));
    MPI_Allgather(&n, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, MPI_COMM_WORLD);
    return all;
  };
  const auto zig = work(true), plain = work(false);
  int64_t total = 0;
  for (int64_t x : zig) total += x;
  EXPECT_EQ(total, T * (T + 1) / 2);
  for (int64_t x : zig) EXPECT_EQ(x, zig[0]) << "zigzag: equal work";
  if (r == 0) {
    std::printf("causal score elements per rank (T=%lld, cp=%d):\n  zigzag:", (long long)T, cp);
    for (int64_t x : zig) std::printf(" %lld", (long long)x);
    std::printf("\n  contiguous:");
    for (int64_t x : plain) std::printf(" %lld", (long long)x);
    std::printf("\n");
  }
  if (cp > 1) {
    EXPECT_GT(plain.back(), plain.front()) << "contiguous chunks: the last rank does the most";
  }
}

}  // namespace
}  // namespace lct
