// Every op's backward against central finite differences, in double precision, on the same
// templated kernels training runs (the cpu backend instantiated for double).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "host_tensor.h"
#include "ops/ops.h"
#include "test_util.h"

namespace lct {
namespace {

using test::HostTensor;
using H = HostTensor<double>;

// Loss L = sum(R * y): the upstream gradient of y is R.
double dot(const H& a, const H& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a.v[i] * b.v[i];
  return s;
}

// Relative error between the analytic gradient `g` of f with respect to `x` and central
// differences, over every element of x.
double fd_error(const std::function<double()>& f, H& x, const std::vector<double>& g, double h = 1e-6) {
  std::vector<double> num(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x.v[i];
    x.v[i] = x0 + h;
    const double fp = f();
    x.v[i] = x0 - h;
    const double fm = f();
    x.v[i] = x0;
    num[i] = (fp - fm) / (2 * h);
  }
  return test::rel_error(g, num);
}

class OpsGrad : public ::testing::Test {
 protected:
  std::unique_ptr<Ops> ops = make_cpu_ops(DType::F64, /*attn_block=*/4);
  Rng rng{1234};
};

TEST_F(OpsGrad, Embedding) {
  const int64_t N = 7, C = 5, V = 6, vb = 3;
  HostTensor<int32_t> tok({N});
  for (int64_t n = 0; n < N; ++n) tok[n] = int32_t(rng.below(V + 5));  // some ids outside the slice
  tok[0] = tok[1] = vb + 2;                                             // a repeated id
  H wte({V, C}), R({N, C}), out({N, C});
  wte.randn(rng);
  R.randn(rng);
  auto f = [&] {
    ops->embedding_forward(out, tok, wte, vb);
    return dot(R, out);
  };
  H dw({V, C});
  ops->embedding_backward(dw, R, tok, vb);
  EXPECT_LT(fd_error(f, wte, dw.v), 1e-8);
}

TEST_F(OpsGrad, RmsNorm) {
  for (auto [N, C] : {std::pair<int64_t, int64_t>{5, 8}, {3, 13}}) {
    H x({N, C}), w({C}), y({N, C}), rstd({N}), R({N, C});
    x.randn(rng);
    w.randn(rng);
    R.randn(rng);
    const double eps = 1e-5;
    auto f = [&] {
      ops->rmsnorm_forward(y, rstd, x, w, eps);
      return dot(R, y);
    };
    f();
    H dx({N, C}, 0.5), dw({C}, 0.25);  // nonzero start: backward accumulates
    ops->rmsnorm_backward(dx, dw, R, x, w, rstd);
    for (auto& a : dx.v) a -= 0.5;
    for (auto& a : dw.v) a -= 0.25;
    EXPECT_LT(fd_error(f, x, dx.v), 1e-7) << N << "x" << C;
    EXPECT_LT(fd_error(f, w, dw.v), 1e-7) << N << "x" << C;
  }
}

TEST_F(OpsGrad, Matmul) {
  const int64_t N = 6, K = 5, M = 7;
  H x({N, K}), w({M, K}), y({N, M}), R({N, M});
  x.randn(rng);
  w.randn(rng);
  R.randn(rng);
  auto f = [&] {
    ops->matmul_forward(y, x, w);
    return dot(R, y);
  };
  H dx({N, K}), dw({M, K});
  ops->matmul_backward(dx, dw, R, x, w);
  EXPECT_LT(fd_error(f, x, dx.v), 1e-8);
  EXPECT_LT(fd_error(f, w, dw.v), 1e-8);
  // accumulate flags add to what is there
  H y2({N, M}, 1.0), dx2({N, K}, 1.0);
  ops->matmul_forward(y2, x, w, /*accumulate=*/true);
  ops->matmul_backward(dx2, Tensor(), R, x, w, /*accumulate_dx=*/true);
  ops->matmul_forward(y, x, w);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y2.v[i], y.v[i] + 1.0, 1e-12);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx2.v[i], dx.v[i] + 1.0, 1e-12);
}

TEST_F(OpsGrad, Rope) {
  const int64_t B = 2, T = 5, Hh = 3, D = 8;
  H x({B, T, Hh, D}), R({B, T, Hh, D}), cos({T, D / 2}), sin({T, D / 2});
  x.randn(rng);
  R.randn(rng);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D / 2; ++i) {
      double ang = double(1000 + 7 * t) / std::pow(10000.0, 2.0 * i / D);
      cos[t * D / 2 + i] = std::cos(ang);
      sin[t * D / 2 + i] = std::sin(ang);
    }
  auto f = [&] {
    H y = x;
    ops->rope_forward(y, cos, sin);
    return dot(R, y);
  };
  H dx = R;
  ops->rope_backward(dx, cos, sin);
  EXPECT_LT(fd_error(f, x, dx.v), 1e-8);
  // Rotation is orthogonal: forward then backward returns the input.
  H y = x;
  ops->rope_forward(y, cos, sin);
  ops->rope_backward(y, cos, sin);
  EXPECT_LT(test::rel_error(y.v, x.v), 1e-14);
}

struct AttnCase {
  int64_t B, Tq, Tk, Hq, Hkv, D;
  bool shuffled_positions;
};

TEST_F(OpsGrad, Attention) {
  // GQA ratios 1, 2, 4; odd lengths; several head dims; tiles of 4 rows so rows span several tiles.
  for (const AttnCase& c : {AttnCase{1, 9, 9, 2, 2, 4, false}, AttnCase{2, 7, 11, 4, 2, 6, true},
                            AttnCase{1, 10, 6, 4, 1, 8, true}}) {
    H q({c.B, c.Tq, c.Hq, c.D}), k({c.B, c.Tk, c.Hkv, c.D}), v({c.B, c.Tk, c.Hkv, c.D});
    H R({c.B, c.Tq, c.Hq, c.D}), out({c.B, c.Tq, c.Hq, c.D}), lse({c.B, c.Hq, c.Tq});
    q.randn(rng);
    k.randn(rng);
    v.randn(rng);
    R.randn(rng);
    HostTensor<int32_t> qp({c.Tq}), kp({c.Tk});
    // Query positions: a late chunk (some keys visible, some not); keys: interleaved positions.
    for (int64_t i = 0; i < c.Tq; ++i) qp[i] = int32_t(3 + 2 * i);
    for (int64_t j = 0; j < c.Tk; ++j) kp[j] = int32_t(c.shuffled_positions ? (j * 7) % (2 * c.Tk) : j);
    auto f = [&] {
      ops->attention_forward(out, lse, q, k, v, qp, kp);
      return dot(R, out);
    };
    f();
    H dq({c.B, c.Tq, c.Hq, c.D}), dk({c.B, c.Tk, c.Hkv, c.D}), dv({c.B, c.Tk, c.Hkv, c.D});
    ops->attention_backward(dq, dk, dv, R, q, k, v, qp, kp, out, lse);
    EXPECT_LT(fd_error(f, q, dq.v), 1e-7) << "Hq/Hkv=" << c.Hq / c.Hkv << " D=" << c.D;
    EXPECT_LT(fd_error(f, k, dk.v), 1e-7) << "Hq/Hkv=" << c.Hq / c.Hkv << " D=" << c.D;
    EXPECT_LT(fd_error(f, v, dv.v), 1e-7) << "Hq/Hkv=" << c.Hq / c.Hkv << " D=" << c.D;
  }
}

TEST_F(OpsGrad, SwiGlu) {
  const int64_t n = 23;
  H g({n}), u({n}), h({n}), R({n});
  g.randn(rng, 2.0);
  u.randn(rng);
  R.randn(rng);
  auto f = [&] {
    ops->swiglu_forward(h, g, u);
    return dot(R, h);
  };
  H dg({n}), du({n});
  ops->swiglu_backward(dg, du, R, g, u);
  EXPECT_LT(fd_error(f, g, dg.v), 1e-8);
  EXPECT_LT(fd_error(f, u, du.v), 1e-8);
}

TEST_F(OpsGrad, ResidualAdd) {
  const int64_t n = 11;
  H a({n}), b({n}), y({n}), R({n});
  a.randn(rng);
  b.randn(rng);
  R.randn(rng);
  auto f = [&] {
    ops->add_forward(y, a, b);
    return dot(R, y);
  };
  H da({n}), db({n});
  ops->add_backward(da, db, R);
  EXPECT_LT(fd_error(f, a, da.v), 1e-9);
  EXPECT_LT(fd_error(f, b, db.v), 1e-9);
}

TEST_F(OpsGrad, LmHeadLoss) {
  const int64_t N = 9, C = 6, V = 13;
  H x({N, C}), w({V, C});
  x.randn(rng);
  w.randn(rng);
  HostTensor<int32_t> tg({N});
  for (int64_t n = 0; n < N; ++n) tg[n] = int32_t(rng.below(V));
  tg[2] = -1;  // an ignored position
  const double scale = 0.37;
  auto loss = [&] {
    H stats({N, 3}), lse({N});
    ops->lmhead_loss_forward(stats, x, w, tg, 0);
    return scale * ops->lmhead_loss_combine(lse, stats, tg);
  };
  // Reference loss from explicit logits.
  double ref = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (tg[n] < 0) continue;
    std::vector<double> lg(V);
    double mx = -1e300;
    for (int64_t vv = 0; vv < V; ++vv) {
      lg[vv] = 0;
      for (int64_t c = 0; c < C; ++c) lg[vv] += x[n * C + c] * w[vv * C + c];
      mx = std::max(mx, lg[vv]);
    }
    double se = 0;
    for (double l : lg) se += std::exp(l - mx);
    ref += mx + std::log(se) - lg[tg[n]];
  }
  EXPECT_NEAR(loss(), scale * ref, 1e-12);

  H stats({N, 3}), lse({N}), dx({N, C}), dw({V, C});
  ops->lmhead_loss_forward(stats, x, w, tg, 0);
  ops->lmhead_loss_combine(lse, stats, tg);
  ops->lmhead_loss_backward(dx, dw, x, w, tg, lse, scale, 0);
  EXPECT_LT(fd_error(loss, x, dx.v), 1e-8);
  EXPECT_LT(fd_error(loss, w, dw.v), 1e-8);

  // Vocabulary-parallel: two slices [0, 5) and [5, 13) give the same loss and gradients.
  const int64_t V0 = 5;
  H w0({V0, C}), w1({V - V0, C});
  std::copy(w.v.begin(), w.v.begin() + V0 * C, w0.v.begin());
  std::copy(w.v.begin() + V0 * C, w.v.end(), w1.v.begin());
  H stats_all({2, N, 3}), lse2({N});
  ops->lmhead_loss_forward(Tensor(stats_all).slice(0, 1).view({N, 3}), x, w0, tg, 0);
  ops->lmhead_loss_forward(Tensor(stats_all).slice(1, 1).view({N, 3}), x, w1, tg, V0);
  EXPECT_NEAR(scale * ops->lmhead_loss_combine(lse2, stats_all, tg), scale * ref, 1e-12);
  H dx0({N, C}), dx1({N, C}), dw0({V0, C}), dw1({V - V0, C});
  ops->lmhead_loss_backward(dx0, dw0, x, w0, tg, lse2, scale, 0);
  ops->lmhead_loss_backward(dx1, dw1, x, w1, tg, lse2, scale, V0);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx0.v[i] + dx1.v[i], dx.v[i], 1e-12);
  for (int64_t i = 0; i < V0 * C; ++i) EXPECT_NEAR(dw0.v[i], dw.v[i], 1e-12);
  for (int64_t i = 0; i < (V - V0) * C; ++i) EXPECT_NEAR(dw1.v[i], dw.v[V0 * C + i], 1e-12);
}

TEST_F(OpsGrad, AdamWMatchesClosedForm) {
  const int64_t n = 4;
  H p({n}), m({n}), v({n}), g({n});
  p.v = {1.0, -2.0, 0.5, 0.0};
  g.v = {0.1, -0.3, 0.0, 2.0};
  AdamWArgs a;
  a.lr = 0.01;
  a.beta1 = 0.9;
  a.beta2 = 0.99;
  a.eps = 1e-8;
  a.weight_decay = 0.1;
  a.step = 1;
  a.grad_scale = 0.5;
  H p0 = p;
  ops->adamw_update(p, m, v, g, a);
  for (int64_t i = 0; i < n; ++i) {
    double gi = g.v[i] * 0.5;
    double mh = (0.1 * gi) / 0.1, vh = (0.01 * gi * gi) / 0.01;
    double expect = p0.v[i] - 0.01 * (mh / (std::sqrt(vh) + 1e-8) + 0.1 * p0.v[i]);
    EXPECT_NEAR(p.v[i], expect, 1e-12);
  }
  EXPECT_NEAR(ops->sum_squares(g), 0.01 + 0.09 + 4.0, 1e-12);
}

}  // namespace
}  // namespace lct
