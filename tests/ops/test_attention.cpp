// Blockwise attention equals naive softmax attention; splitting K/V into blocks and merging the
// partial results equals one call; rows that see no key are handled.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "host_tensor.h"
#include "ops/ops.h"
#include "test_util.h"

namespace lct {
namespace {

using test::HostTensor;

// Naive attention with an explicit score matrix (test only), in double.
// With qstart ([B, Tq], positions then [B, T] too) the document rule qstart <= kpos <= qpos.
void naive_attention(std::vector<double>& out, std::vector<double>& lse, const std::vector<double>& q,
                     const std::vector<double>& k, const std::vector<double>& v, const std::vector<int32_t>& qp,
                     const std::vector<int32_t>& kp, int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv,
                     int64_t D, const std::vector<int32_t>& qstart = {}) {
  const bool rows = !qstart.empty();
  out.assign(size_t(B * Tq * Hq * D), 0.0);
  lse.assign(size_t(B * Hq * Tq), -std::numeric_limits<double>::infinity());
  const double sc = 1.0 / std::sqrt(double(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / (Hq / Hkv);
      for (int64_t i = 0; i < Tq; ++i) {
        std::vector<double> s(Tk, -INFINITY);
        double mx = -INFINITY;
        const int32_t qpos = qp[size_t(rows ? b * Tq + i : i)];
        const int32_t lo = rows ? qstart[size_t(b * Tq + i)] : INT32_MIN;
        for (int64_t j = 0; j < Tk; ++j) {
          const int32_t kpos = kp[size_t(rows ? b * Tk + j : j)];
          if (kpos > qpos || kpos < lo) continue;
          double a = 0;
          for (int64_t d = 0; d < D; ++d) a += q[((b * Tq + i) * Hq + h) * D + d] * k[((b * Tk + j) * Hkv + hk) * D + d];
          s[j] = a * sc;
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double l = 0;
        for (int64_t j = 0; j < Tk; ++j) l += (s[j] == -INFINITY) ? 0 : std::exp(s[j] - mx);
        for (int64_t j = 0; j < Tk; ++j) {
          if (s[j] == -INFINITY) continue;
          double p = std::exp(s[j] - mx) / l;
          for (int64_t d = 0; d < D; ++d) out[((b * Tq + i) * Hq + h) * D + d] += p * v[((b * Tk + j) * Hkv + hk) * D + d];
        }
        lse[(b * Hq + h) * Tq + i] = mx + std::log(l);
      }
    }
}

struct Case {
  int64_t B, T, Hq, Hkv, D, blk;
};

class AttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionTest, BlockwiseEqualsNaive) {
  const Case c = GetParam();
  ASSERT_GE((c.T + c.blk - 1) / c.blk, 4) << "at least 4 tiles per row";
  Rng rng(7);
  auto ops = make_cpu_ops(DType::F64, int(c.blk));
  HostTensor<double> q({c.B, c.T, c.Hq, c.D}), k({c.B, c.T, c.Hkv, c.D}), v({c.B, c.T, c.Hkv, c.D});
  q.randn(rng);
  k.randn(rng);
  v.randn(rng);
  HostTensor<int32_t> pos({c.T});
  for (int64_t t = 0; t < c.T; ++t) pos[t] = int32_t(t);
  HostTensor<double> out({c.B, c.T, c.Hq, c.D}), lse({c.B, c.Hq, c.T});
  ops->attention_forward(out, lse, q, k, v, pos, pos);
  std::vector<double> ro, rl;
  naive_attention(ro, rl, q.v, k.v, v.v, pos.v, pos.v, c.B, c.T, c.T, c.Hq, c.Hkv, c.D);
  EXPECT_LT(test::rel_error(out.v, ro), 1e-13);
  EXPECT_LT(test::rel_error(lse.v, rl), 1e-13);

  // float: the training precision, close to the double reference.
  auto ops32 = make_cpu_ops(DType::F32, int(c.blk));
  HostTensor<float> qf({c.B, c.T, c.Hq, c.D}), kf({c.B, c.T, c.Hkv, c.D}), vf({c.B, c.T, c.Hkv, c.D});
  for (size_t i = 0; i < q.size(); ++i) qf[i] = float(q[i]);
  for (size_t i = 0; i < k.size(); ++i) kf[i] = float(k[i]), vf[i] = float(v[i]);
  HostTensor<float> of({c.B, c.T, c.Hq, c.D}), lf({c.B, c.Hq, c.T});
  ops32->attention_forward(of, lf, qf, kf, vf, pos, pos);
  EXPECT_LT(test::rel_error(of.v, ro), 1e-5);
}

TEST_P(AttentionTest, SplitKeyBlocksMergeToTheSameResultAndGradients) {
  const Case c = GetParam();
  Rng rng(11);
  auto ops = make_cpu_ops(DType::F64, int(c.blk));
  const int64_t T = c.T, cut = T / 3;  // two K/V blocks of unequal length
  HostTensor<double> q({c.B, T, c.Hq, c.D}), k({c.B, T, c.Hkv, c.D}), v({c.B, T, c.Hkv, c.D}), dout({c.B, T, c.Hq, c.D});
  q.randn(rng);
  k.randn(rng);
  v.randn(rng);
  dout.randn(rng);
  HostTensor<int32_t> pos({T});
  for (int64_t t = 0; t < T; ++t) pos[t] = int32_t(t);
  HostTensor<double> out({c.B, T, c.Hq, c.D}), lse({c.B, c.Hq, T});
  ops->attention_forward(out, lse, q, k, v, pos, pos);
  HostTensor<double> dq({c.B, T, c.Hq, c.D}), dk({c.B, T, c.Hkv, c.D}), dv({c.B, T, c.Hkv, c.D});
  ops->attention_backward(dq, dk, dv, dout, q, k, v, pos, pos, out, lse);

  // The same keys as two blocks [0, cut) and [cut, T), each with its own positions.
  auto sub = [&](const HostTensor<double>& x, int64_t t0, int64_t n) {
    HostTensor<double> r({c.B, n, c.Hkv, c.D});
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t e = 0; e < c.Hkv * c.D; ++e) r[(b * n + t) * c.Hkv * c.D + e] = x.v[((b * T) + t0 + t) * c.Hkv * c.D + e];
    return r;
  };
  HostTensor<double> k0 = sub(k, 0, cut), v0 = sub(v, 0, cut), k1 = sub(k, cut, T - cut), v1 = sub(v, cut, T - cut);
  HostTensor<int32_t> p0({cut}), p1({T - cut});
  for (int64_t t = 0; t < cut; ++t) p0[t] = int32_t(t);
  for (int64_t t = cut; t < T; ++t) p1[t - cut] = int32_t(t);
  // Later block first, so the running result starts with rows that see nothing (lse = -inf).
  HostTensor<double> o({c.B, T, c.Hq, c.D}), l({c.B, c.Hq, T}), ob({c.B, T, c.Hq, c.D}), lb({c.B, c.Hq, T});
  ops->attention_forward(o, l, q, k1, v1, pos, p1);
  EXPECT_TRUE(std::isinf(l[0]) && l[0] < 0) << "query 0 sees no key of the later block";
  EXPECT_EQ(o[0], 0.0);
  ops->attention_forward(ob, lb, q, k0, v0, pos, p0);
  ops->attention_merge(o, l, ob, lb);
  EXPECT_LT(test::rel_error(o.v, out.v), 1e-13);
  EXPECT_LT(test::rel_error(l.v, lse.v), 1e-13);

  HostTensor<double> dq2({c.B, T, c.Hq, c.D}), dk0({c.B, cut, c.Hkv, c.D}), dv0({c.B, cut, c.Hkv, c.D});
  HostTensor<double> dk1({c.B, T - cut, c.Hkv, c.D}), dv1({c.B, T - cut, c.Hkv, c.D});
  ops->attention_backward(dq2, dk0, dv0, dout, q, k0, v0, pos, p0, out, lse);
  ops->attention_backward(dq2, dk1, dv1, dout, q, k1, v1, pos, p1, out, lse);
  EXPECT_LT(test::rel_error(dq2.v, dq.v), 1e-12);
  HostTensor<double> dk0r = sub(dk, 0, cut), dv0r = sub(dv, 0, cut), dk1r = sub(dk, cut, T - cut), dv1r = sub(dv, cut, T - cut);
  EXPECT_LT(test::rel_error(dk0.v, dk0r.v), 1e-12);
  EXPECT_LT(test::rel_error(dv0.v, dv0r.v), 1e-12);
  EXPECT_LT(test::rel_error(dk1.v, dk1r.v), 1e-12);
  EXPECT_LT(test::rel_error(dv1.v, dv1r.v), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(Case{1, 37, 2, 2, 8, 8},     // MHA, 37 = 4 tiles + 5
                                           Case{2, 50, 4, 2, 16, 12},   // GQA 2
                                           Case{1, 45, 8, 2, 4, 10},    // GQA 4, tiny head dim
                                           Case{1, 67, 4, 1, 32, 16}));  // GQA 4 (MQA), wide head

// Packed documents: per-sequence positions (shuffled, as a ring hop holds them) and document
// starts, against the naive rule; forward and, through the split into two key blocks, backward.
TEST(AttentionDocuments, DocumentMaskEqualsNaive) {
  const int64_t B = 2, T = 70, Hq = 4, Hkv = 2, D = 8;
  Rng rng(5);
  auto ops = make_cpu_ops(DType::F64, 8);
  HostTensor<double> q({B, T, Hq, D}), k({B, T, Hkv, D}), v({B, T, Hkv, D});
  q.randn(rng);
  k.randn(rng);
  v.randn(rng);
  HostTensor<int32_t> qp({B * T}), kp({B * T}), qs({B * T});
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> start(static_cast<size_t>(T));
    int32_t begin = 0;
    for (int32_t t = 0; t < int32_t(T); ++t) {
      if (t > 0 && rng.below(9) == 0) begin = t;
      start[size_t(t)] = begin;
    }
    std::vector<int32_t> perm(static_cast<size_t>(T));
    for (int32_t t = 0; t < int32_t(T); ++t) perm[size_t(t)] = t;
    for (int64_t t = T - 1; t > 0; --t) std::swap(perm[size_t(t)], perm[size_t(rng.below(uint64_t(t) + 1))]);
    for (int64_t t = 0; t < T; ++t) {
      qp[b * T + t] = perm[size_t(t)];
      qs[b * T + t] = start[size_t(perm[size_t(t)])];
      kp[b * T + t] = int32_t(t);
    }
  }
  HostTensor<double> out({B, T, Hq, D}), lse({B, Hq, T});
  ops->attention_forward(out, lse, q, k, v, AttnMask{qp, kp, qs});
  std::vector<double> ro, rl;
  naive_attention(ro, rl, q.v, k.v, v.v, qp.v, kp.v, B, T, T, Hq, Hkv, D, qs.v);
  EXPECT_LT(test::rel_error(out.v, ro), 1e-13);
  EXPECT_LT(test::rel_error(lse.v, rl), 1e-13);
  // Without the starts the result is another one (the mask is applied, not ignored).
  HostTensor<double> o2({B, T, Hq, D}), l2({B, Hq, T});
  ops->attention_forward(o2, l2, q, k, v, AttnMask{qp, kp, Tensor()});
  EXPECT_GT(test::rel_error(o2.v, ro), 1e-2);
}

TEST(AttentionMerge, NegativeInfinityIsSafe) {
  auto ops = make_cpu_ops(DType::F32, 4);
  const float ninf = -std::numeric_limits<float>::infinity();
  HostTensor<float> o({1, 2, 1, 2}), l({1, 1, 2}), ob({1, 2, 1, 2}), lb({1, 1, 2});
  o.v = {0, 0, 1, 2};
  l.v = {ninf, 0.5f};
  ob.v = {3, 4, 5, 6};
  lb.v = {0.25f, ninf};
  ops->attention_merge(o, l, ob, lb);
  EXPECT_EQ(o.v, (std::vector<float>{3, 4, 1, 2}));  // first row copied, second untouched
  EXPECT_EQ(l.v, (std::vector<float>{0.25f, 0.5f}));
  for (float x : o.v) EXPECT_TRUE(std::isfinite(x));
}

}  // namespace
}  // namespace lct
