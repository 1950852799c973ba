// All-to-all context parallelism (issue 19, attention/context_attention.h) on all ranks as one cp
// group of cp = U x R: for every U dividing cp (U = 1 is the plain ring), for GQA shapes with and
// without K/V head replication (U > Hkv), with plain zigzag and with packed documents (doc_zigzag,
// document masks), the output, dQ and dK/dV of each rank equal single-rank attention over the
// whole sequence at the slots of its sharding index (fp32, rel <= 1e-5). And the communication
// contract the planner models: 3 all-to-all calls forward and 6 backward, each sending
// send.bytes() / U to each other member of its a2a group and nothing elsewhere, in the dtypes the
// header states; the ring's point-to-point only to the R ring's next rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include "attention/context_attention.h"
#include "attention/sharding.h"
#include "core/error.h"
#include "host_tensor.h"
#include "parallel/context.h"
#include "test_util.h"

namespace lct {
namespace {

using test::HostTensor;

struct Case {
  int64_t B, chunk, Hq, Hkv, D;
  bool docs;  // packed documents, doc_zigzag with document masks
};

// Per row b, rows slots[b] of a [B, T, H, D] tensor.
std::vector<float> take(const HostTensor<float>& x, const AttentionMeta& m, int idx, int64_t T, int64_t H, int64_t D,
                        int64_t lead = 1) {
  std::vector<float> out;
  const int64_t B = m.B();
  for (int64_t l = 0; l < lead; ++l)
    for (int64_t b = 0; b < B; ++b)
      for (int32_t s : m.rows[size_t(b)].slots[size_t(idx)])
        for (int64_t e = 0; e < H * D; ++e) out.push_back(x.v[size_t(((l * B + b) * T + s) * H * D + e)]);
  return out;
}

void run_case(const Case& c, int U) {
  int W = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  const int cp = W;
  ParallelConfig pc;
  pc.cp = cp;
  pc.cp_a2a = U;
  pc.cp_ring = cp / U;
  auto ctx = make_parallel_context(MPI_COMM_WORLD, pc);
  const int me = ctx->me().cp_rank, R = cp / U;
  const int64_t T = 2 * cp * c.chunk, Tl = T / cp, B = c.B, Hq = c.Hq, Hkv = c.Hkv, D = c.D;
  auto ops = make_cpu_ops(DType::F32, 8);
  Rng rng(7);  // the same full tensors on every rank
  HostTensor<float> q({B, T, Hq, D}), kvf({2, B, T, Hkv, D}), dout({B, T, Hq, D});
  q.randn(rng);
  kvf.randn(rng);
  dout.randn(rng);
  std::vector<std::vector<int32_t>> begins(size_t(B), std::vector<int32_t>{0});
  if (c.docs)
    for (auto& b : begins)
      for (int32_t t = 1; t < int32_t(T) - 4; ++t)
        if (rng.below(7) == 0) b.push_back(t);
  const AttentionMeta meta = document_meta(begins, T, cp, c.docs ? CpSharding::DocZigzag : CpSharding::Zigzag,
                                           c.docs, c.docs);
  // Reference: one rank over all T slots of each row, masked by the rows' document starts.
  HostTensor<int32_t> qpos({B * T}), qstart({B * T});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      qpos[size_t(b * T + t)] = int32_t(t);
      qstart[size_t(b * T + t)] = meta.rows[size_t(b)].doc_start[size_t(t)];
    }
  const Tensor kf(kvf.v.data(), DType::F32, {B, T, Hkv, D}), vf(kvf.v.data() + B * T * Hkv * D, DType::F32, {B, T, Hkv, D});
  AttnMask mask{qpos, qpos, c.docs ? Tensor(qstart) : Tensor()};
  HostTensor<float> out({B, T, Hq, D}), lse({B, Hq, T}), dq({B, T, Hq, D}), dkv({2, B, T, Hkv, D});
  ops->attention_forward(out, lse, q, kf, vf, mask);
  ops->attention_backward(dq, Tensor(dkv.v.data(), DType::F32, {B, T, Hkv, D}),
                          Tensor(dkv.v.data() + B * T * Hkv * D, DType::F32, {B, T, Hkv, D}), dout, q, kf, vf, mask,
                          out, lse);

  // This rank's shards (sharding index cp_rank).
  HostTensor<float> lq({B, Tl, Hq, D}), lkv({2, B, Tl, Hkv, D}), ldout({B, Tl, Hq, D});
  auto fill = [](HostTensor<float>& t, const std::vector<float>& v) {
    ASSERT_EQ(v.size(), t.size());
    std::copy(v.begin(), v.end(), t.v.begin());  // t.t points into t.v
  };
  fill(lq, take(q, meta, me, T, Hq, D));
  fill(lkv, take(kvf, meta, me, T, Hkv, D, 2));
  fill(ldout, take(dout, meta, me, T, Hq, D));
  RingShape rs;
  rs.B = B;
  rs.T = T;
  rs.Hq = Hq;
  rs.Hkv = Hkv;
  rs.D = D;
  rs.cp = cp;
  ContextAttention attn(*ops, ctx->a2a_comm(), R > 1 ? ctx->ring_comm() : nullptr, me, rs, U);
  attn.set_meta(meta);
  ctx->traffic->reset();
  HostTensor<float> rout({B, Tl, Hq, D}), rlse({B, Hq, Tl}), rdq({B, Tl, Hq, D}), rdkv({2, B, Tl, Hkv, D});
  attn.forward(rout, rlse, lq, lkv);
  const int64_t a2a_fwd = attn.stats().a2a_calls, bytes_fwd = ctx->traffic->a2a_bytes();
  attn.backward(rdq, rdkv, ldout, lq, lkv, rout, rlse);
  EXPECT_LT(test::rel_error(rout.v, take(out, meta, me, T, Hq, D)), 1e-5);
  EXPECT_LT(test::rel_error(rdq.v, take(dq, meta, me, T, Hq, D)), 1e-5);
  EXPECT_LT(test::rel_error(rdkv.v, take(dkv, meta, me, T, Hkv, D, 2)), 1e-5);

  // The all-to-all calls and bytes (f32 here: act = acc = 4 bytes).
  const int64_t hk = std::max<int64_t>(Hkv / U, 1);
  const int64_t qb = B * Tl * Hq * D * 4, kvb = 2 * B * Tl * U * hk * D * 4;  // send bytes of q-like and kv calls
  if (U == 1) {
    EXPECT_EQ(attn.stats().a2a_calls, 0);
    EXPECT_EQ(ctx->traffic->a2a_bytes(), 0);
  } else {
    EXPECT_EQ(a2a_fwd, 3);
    EXPECT_EQ(attn.stats().a2a_calls, 9);
    EXPECT_EQ(bytes_fwd, (2 * qb + kvb) / U * (U - 1));
    EXPECT_EQ(ctx->traffic->a2a_bytes(), (6 * qb + 3 * kvb) / U * (U - 1));
    const auto peers = ctx->traffic->a2a_peers();
    EXPECT_EQ(peers.size(), size_t(U - 1));
    for (const auto& [dst, bytes] : peers) {
      EXPECT_EQ(ctx->layout.ranks[size_t(dst)].ring_rank, ctx->me().ring_rank) << "a2a only inside the group";
      EXPECT_EQ(bytes, (6 * qb + 3 * kvb) / U);
    }
  }
  const auto p2p = ctx->traffic->p2p_peers();
  if (R > 1) {
    ASSERT_EQ(p2p.size(), 1u);
    EXPECT_EQ(p2p.begin()->first, ctx->me().cp_next);
    // Forward R-1 K/V blocks, backward R-1 K/V blocks and R dK/dV accumulators of the head layout.
    EXPECT_EQ(p2p.begin()->second, (2 * (R - 1) + R) * kvb);
    EXPECT_EQ(attn.stats().blocks_sent, 2 * (R - 1));
  } else {
    EXPECT_TRUE(p2p.empty());
  }
}

class ContextAttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(ContextAttentionTest, EveryAllToAllSizeEqualsSingleRankAttention) {
  const Case c = GetParam();
  int W = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int ran = 0;
  for (int U = 1; U <= W; U *= 2) {
    if (c.Hq % U != 0 || (c.Hkv % U != 0 && U % c.Hkv != 0)) continue;
    SCOPED_TRACE(::testing::Message() << "cp " << W << " U " << U << " Hq " << c.Hq << " Hkv " << c.Hkv
                                      << (c.docs ? " doc_zigzag" : " zigzag"));
    run_case(c, U);
    ++ran;
  }
  EXPECT_GE(ran, 2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ContextAttentionTest,
                         ::testing::Values(Case{1, 5, 8, 8, 8, false},   // MHA
                                           Case{2, 3, 8, 2, 8, false},   // GQA 4: replication when U > 2
                                           Case{1, 6, 4, 1, 16, false},  // MQA: every U > 1 replicates
                                           Case{2, 8, 8, 2, 8, true}));  // packed documents

// Heads that U cannot split are an InputError naming the keys.
TEST(ContextAttentionRules, IllegalHeadsNameTheKeys) {
  int W = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  if (W < 4) GTEST_SKIP() << "needs 4 ranks";
  ParallelConfig pc;
  pc.cp = W;
  pc.cp_a2a = 4;
  pc.cp_ring = W / 4;
  auto ctx = make_parallel_context(MPI_COMM_WORLD, pc);
  auto ops = make_cpu_ops(DType::F32, 8);
  RingShape rs;
  rs.T = 2 * W * 4;
  rs.Hq = 6;
  rs.Hkv = 6;
  rs.D = 8;
  rs.cp = W;
  try {
    ContextAttention attn(*ops, ctx->a2a_comm(), ctx->ring_comm(), ctx->me().cp_rank, rs, 4);
    ADD_FAILURE() << "6 heads over an all-to-all of 4";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.n_heads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lct
