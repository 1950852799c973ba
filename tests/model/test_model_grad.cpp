// Whole-model gradient check: the loss's gradient for every parameter tensor against central
// differences, in double on the cpu backend; recompute and tied embeddings included.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "model/llama.h"
#include "test_util.h"

namespace lct {
namespace {

struct TinySetup {
  ModelConfig m;
  RopeConfig r;
  ModelShape s;
};

TinySetup tiny(bool tied, bool recompute) {
  TinySetup x;
  x.m.vocab_size = 11;
  x.m.dim = 12;
  x.m.n_layers = 2;
  x.m.n_heads = 4;
  x.m.n_kv_heads = 2;
  x.m.head_dim = 4;
  x.m.ffn_dim = 10;
  x.m.norm_eps = 1e-5;
  x.m.tie_embeddings = tied;
  x.r.theta = 1000;
  x.s.micro_batch = 2;
  x.s.seq_len = 10;
  x.s.recompute = recompute;
  x.s.attention_tile = 4;
  return x;
}

void random_params(Ops& ops, Llama& model, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> host(size_t(model.table().total));
  for (auto& v : host) v = rng.normal() * 0.3;
  // norm weights around 1
  for (const auto& p : model.table().specs)
    if (p.is_vector)
      for (int64_t i = 0; i < p.local_rows; ++i) host[size_t(p.offset + i)] = 1.0 + 0.2 * rng.normal();
  ops.from_host(model.params().flat, host.data());
}

MicroBatch random_batch(const TinySetup& x, uint64_t seed) {
  Rng rng(seed);
  MicroBatch mb;
  for (int64_t i = 0; i < x.s.micro_batch * x.s.seq_len; ++i) {
    mb.inputs.push_back(int32_t(rng.below(uint64_t(x.m.vocab_size))));
    mb.targets.push_back(int32_t(rng.below(uint64_t(x.m.vocab_size))));
  }
  mb.targets[3] = -1;  // an ignored position
  return mb;
}

class ModelGrad : public ::testing::TestWithParam<std::pair<bool, bool>> {};

TEST_P(ModelGrad, EveryParameterMatchesFiniteDifferences) {
  const auto [tied, recompute] = GetParam();
  TinySetup x = tiny(tied, recompute);
  auto ops = make_cpu_ops(DType::F64, x.s.attention_tile);
  Llama model(x.m, x.r, x.s, *ops, nullptr, nullptr);
  random_params(*ops, model, 5);
  MicroBatch mb = random_batch(x, 9);
  const double scale = 0.7;
  ops->zero(model.grads().flat);
  const double loss = model.forward_backward(mb, scale);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(model.forward(mb), loss, 1e-12) << "forward alone gives the same loss";

  double* p = model.params().flat.data<double>();
  const double* g = model.grads().flat.data<double>();
  for (const auto& spec : model.table().specs) {
    std::vector<double> num, ana;
    for (int64_t i = 0; i < spec.local_numel(); ++i) {
      const int64_t j = spec.offset + i;
      const double p0 = p[j], h = 1e-6;
      p[j] = p0 + h;
      const double lp = model.forward(mb);
      p[j] = p0 - h;
      const double lm = model.forward(mb);
      p[j] = p0;
      num.push_back(scale * (lp - lm) / (2 * h));
      ana.push_back(g[j]);
    }
    EXPECT_LT(test::rel_error(ana, num), 1e-6) << spec.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, ModelGrad,
                         ::testing::Values(std::make_pair(false, false), std::make_pair(true, false),
                                           std::make_pair(false, true)));

TEST(ModelRecompute, SameLossAndGradientsAsStoredActivations) {
  TinySetup a = tiny(false, false), b = tiny(false, true);
  a.s.seq_len = b.s.seq_len = 33;
  auto ops = make_cpu_ops(DType::F64, 4);
  Llama ma(a.m, a.r, a.s, *ops, nullptr, nullptr), mb_(b.m, b.r, b.s, *ops, nullptr, nullptr);
  random_params(*ops, ma, 3);
  random_params(*ops, mb_, 3);
  MicroBatch batch = random_batch(a, 4);
  ops->zero(ma.grads().flat);
  ops->zero(mb_.grads().flat);
  EXPECT_DOUBLE_EQ(ma.forward_backward(batch, 1.0), mb_.forward_backward(batch, 1.0));
  const double* ga = ma.grads().flat.data<double>();
  const double* gb = mb_.grads().flat.data<double>();
  EXPECT_LT(test::rel_error(ga, gb, size_t(ma.table().total)), 1e-14);
}

}  // namespace
}  // namespace lct
