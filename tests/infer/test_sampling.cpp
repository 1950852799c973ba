// The sampler: greedy is the argmax (lowest id on ties); a seed reproduces a sampled sequence;
// top_p keeps only the nucleus; frequencies follow softmax(logits / temperature); bad options are
// input errors.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "infer/sampling.h"

namespace lct {
namespace {

TEST(Sampling, GreedyIsTheArgmaxLowestIdOnTies) {
  Sampler s(SamplingOptions{});
  EXPECT_EQ(s.pick({0.5, 2.0, -1.0, 2.0}), 1);
  double margin = 0;
  EXPECT_EQ(argmax({0.5, 2.0, -1.0, 1.25}, &margin), 1);
  EXPECT_DOUBLE_EQ(margin, 0.75);
}

TEST(Sampling, SeededAndReproducible) {
  const std::vector<double> logits = {0.1, 0.3, 0.2, 0.0, 0.25};
  SamplingOptions o;
  o.temperature = 1;
  o.seed = 9;
  Sampler a(o), b(o);
  std::vector<int32_t> x, y;
  for (int i = 0; i < 50; ++i) x.push_back(a.pick(logits)), y.push_back(b.pick(logits));
  EXPECT_EQ(x, y);
  o.seed = 10;
  Sampler c(o);
  std::vector<int32_t> z;
  for (int i = 0; i < 50; ++i) z.push_back(c.pick(logits));
  EXPECT_NE(x, z);
}

TEST(Sampling, FrequenciesFollowTheTemperedSoftmax) {
  const std::vector<double> logits = {1.0, 0.0, -1.0};
  SamplingOptions o;
  o.temperature = 2;
  o.seed = 3;
  Sampler s(o);
  std::vector<int> n(3);
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++n[size_t(s.pick(logits))];
  double z = 0;
  for (double l : logits) z += std::exp(l / 2);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(double(n[i]) / draws, std::exp(logits[i] / 2) / z, 0.01) << i;
}

TEST(Sampling, TopPKeepsTheNucleus) {
  // Probabilities ~ 0.64, 0.24, 0.09, 0.03: top_p = 0.8 keeps ids 0 and 1 only.
  const std::vector<double> logits = {3.0, 2.0, 1.0, 0.0};
  SamplingOptions o;
  o.temperature = 1;
  o.top_p = 0.8;
  o.seed = 5;
  Sampler s(o);
  std::vector<int> n(4);
  for (int i = 0; i < 20000; ++i) ++n[size_t(s.pick(logits))];
  EXPECT_EQ(n[2] + n[3], 0);
  EXPECT_NEAR(double(n[0]) / 20000, 0.64 / 0.88, 0.015);
  o.top_p = 1e-9;  // the nucleus is the single most likely token
  Sampler g(o);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(g.pick(logits), 0);
}

TEST(Sampling, BadOptionsAreInputErrors) {
  SamplingOptions o;
  o.temperature = -1;
  EXPECT_THROW(Sampler{o}, InputError);
  o.temperature = 1;
  o.top_p = 0;
  EXPECT_THROW(Sampler{o}, InputError);
  o.top_p = 1.5;
  EXPECT_THROW(Sampler{o}, InputError);
}

}  // namespace
}  // namespace lct
