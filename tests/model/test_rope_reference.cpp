// RoPE frequencies for every scaling type against transformers' own rope functions (fixture made
// by tools/make_rope_reference.py), ntk against its closed form, the scaling-law thetas, and
// cos/sin at positions near 1M against a high-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "deck/config.h"
#include "model/rope.h"
#include "test_util.h"

namespace lct {
namespace {

nlohmann::json reference() {
  std::ifstream f(test::data_dir() + "/rope/rope_reference.json");
  return nlohmann::json::parse(f);
}

RopeConfig config_of(const nlohmann::json& c) {
  RopeConfig r;
  r.theta = c["rope_theta"];
  const std::string type = c["rope_type"];
  r.scaling = (type == "default" || type == "scaling_law") ? "none" : type;
  const nlohmann::json& p = c["params"];
  auto num = [&](const char* k, double def) { return p.contains(k) ? p[k].get<double>() : def; };
  r.factor = num("factor", 1);
  r.low_freq_factor = num("low_freq_factor", 1);
  r.high_freq_factor = num("high_freq_factor", 4);
  r.beta_fast = c.contains("derived") && c["derived"].contains("beta_fast") ? c["derived"]["beta_fast"].get<double>()
                                                                            : num("beta_fast", 32);
  r.beta_slow = c.contains("derived") && c["derived"].contains("beta_slow") ? c["derived"]["beta_slow"].get<double>()
                                                                            : num("beta_slow", 1);
  // transformers: the original context is original_max_position_embeddings when given (yarn,
  // llama3) and max_position_embeddings for dynamic.
  r.original_max_position_embeddings =
      int64_t(type == "dynamic" ? num("max_position_embeddings", 0) : num("original_max_position_embeddings", 0));
  r.base_context = int64_t(num("max_position_embeddings", 8192));
  return r;
}

TEST(RopeReference, EveryScalingTypeMatchesTransformers) {
  nlohmann::json ref = reference();
  int checked = 0;
  for (const auto& c : ref["cases"]) {
    const std::string name = c["name"];
    RopeConfig r = config_of(c);
    const int64_t d = c["head_dim"];
    const int64_t seq = c.contains("seq_len") && !c["seq_len"].is_null() ? c["seq_len"].get<int64_t>() : 1;
    RopeFrequencies f = rope_frequencies(r, d, seq);
    std::vector<double> want = c["inv_freq"].get<std::vector<double>>();
    ASSERT_EQ(f.inv_freq.size(), want.size()) << name;
    // transformers' reference is computed in float64 (tools/make_rope_reference.py): agree to
    // rounding, and for ntk to its closed form.
    EXPECT_LT(test::rel_error(f.inv_freq, want), 1e-12) << name;
    EXPECT_NEAR(f.attention_factor, c["attention_factor"].get<double>(), 1e-12) << name;
    ++checked;
  }
  EXPECT_GE(checked, 19);
}

TEST(RopeReference, ScalingLawThetas) {
  for (const auto& c : reference()["cases"]) {
    if (c["rope_type"] != "scaling_law") continue;
    const auto& p = c["params"];
    const double theta = scaling_law_theta(p["base"], p["original_max_position_embeddings"], p["seq_len"]);
    EXPECT_EQ(theta, c["derived"]["theta_rounded"].get<double>()) << c["name"];
  }
}

TEST(RopeReference, AnglesNearOneMillionAreComputedInDouble) {
  const nlohmann::json p = reference()["positions"];
  RopeConfig r;
  r.theta = p["rope_theta"];
  const int64_t d = p["head_dim"];
  RopeFrequencies f = rope_frequencies(r, d, 1048576);
  const std::vector<int32_t> positions = p["positions"].get<std::vector<int32_t>>();
  std::vector<double> cos, sin;
  rope_tables(f, positions, cos, sin);
  const std::vector<int> idx = p["freq_indices"].get<std::vector<int>>();
  double worst = 0;
  for (size_t t = 0; t < positions.size(); ++t)
    for (size_t j = 0; j < idx.size(); ++j) {
      const double c = p["cos"][t][j], s = p["sin"][t][j];
      worst = std::max({worst, std::abs(cos[t * size_t(d / 2) + size_t(idx[j])] - c),
                        std::abs(sin[t * size_t(d / 2) + size_t(idx[j])] - s)});
    }
  std::printf("cos/sin at positions up to %d: max abs error %.2e vs the 60-digit reference\n", positions.back(), worst);
  EXPECT_LT(worst, 1e-9);  // an fp32 angle would be off by up to 0.03 rad here
}

}  // namespace
}  // namespace lct
