// Context parallelism (ring attention): cp = 2, 4 reproduce cp = 1 on the same batch, for GQA
// ratios 1 and 4, with recompute, and combined with dp.
#include <algorithm>

#include "equivalence.h"

namespace lct::test {
namespace {

TEST(ContextParallel, SameTrajectoryAndWeightsAsOneRank) {
  for (const std::vector<std::string>& model : {std::vector<std::string>{"--model.n_kv_heads=4"},  // GQA 1
                                                std::vector<std::string>{"--model.n_heads=8", "--model.n_kv_heads=2"}}) {
    const std::string tag = model.size() == 1 ? "gqa1" : "gqa4";
    auto with = [&](std::vector<std::string> v) {
      v.insert(v.end(), model.begin(), model.end());
      return v;
    };
    RunResult ref = run_case("cp_ref_" + tag, 1, with({}));
    expect_learning(ref);
    expect_same_run(ref, run_case("cp2_" + tag, 2, with({"--parallel.cp=2"})), "cp2 " + tag);
    expect_same_run(ref, run_case("cp4_" + tag, 4, with({"--parallel.cp=4"})), "cp4 " + tag);
    expect_same_run(ref, run_case("cp2_recompute_" + tag, 2, with({"--parallel.cp=2", "--train.recompute=layer"})),
                    "cp2 recompute " + tag);
    expect_same_run(ref, run_case("cp2_dp2_" + tag, 4, with({"--parallel.cp=2", "--train.grad_accum=2", "--parallel.zero=1"})),
                    "cp2 dp2 zero1 " + tag);
  }
}

// Every parameter's gradient, per tensor: one SGD step without clipping or decay moves each weight by
// exactly -lr * g, so g = (w0 - w1) / lr; w0 comes from two cp = 1 runs at lr a and 2a
// (w(a) = w0 - a g, w(2a) = w0 - 2a g => w0 = 2 w(a) - w(2a)). a = 1 makes the step large against
// the fp32 rounding of the weights (init std 0.02).
TEST(ContextParallel, EveryGradientEqualsOneRank) {
  using Weights = std::map<std::string, std::vector<float>>;
  const std::vector<std::string> sgd = {"--optim.name=sgd", "--optim.weight_decay=0", "--train.grad_clip=0",
                                        "--train.steps=1", "--train.warmup_steps=0", "--train.lr_schedule=constant",
                                        "--model.n_heads=8", "--model.n_kv_heads=2"};  // GQA 4
  auto one_step = [&](const std::string& name, int np, const std::string& lr, const std::string& layout) {
    const std::string dir = scratch_dir(name);
    const std::string corpus = dir + "/corpus.bin";
    write_markov_corpus(corpus, 64, 20000, 7);
    std::vector<std::string> ov = sgd;
    ov.insert(ov.end(), {"--train.lr=" + lr, "--checkpoint.resume=none", layout});
    CommandResult r = run_lctrain(np, dir, tiny_deck(corpus, dir + "/out"), ov);
    EXPECT_EQ(r.exit_code, 0) << name << ":\n" << r.output;
    return r.exit_code == 0 ? read_checkpoint_weights(checkpoint_path(dir + "/out", 1)) : Weights{};
  };
  const Weights wa = one_step("cpg_ref_a", 1, "1", "--parallel.cp=1"), w2a = one_step("cpg_ref_2a", 1, "2", "--parallel.cp=1");
  ASSERT_FALSE(wa.empty());
  ASSERT_EQ(wa.size(), w2a.size());
  auto grads = [&](const Weights& w1) {  // (w0 - w1) / a with a = 1, in double
    std::map<std::string, std::vector<double>> g;
    for (const auto& [name, v] : w1) {
      const auto& a = wa.at(name);
      const auto& b = w2a.at(name);
      auto& out = g[name];
      for (size_t i = 0; i < v.size(); ++i) out.push_back((2.0 * a[i] - double(b[i])) - double(v[i]));
    }
    return g;
  };
  const auto ref = grads(wa);
  for (int cp : {2, 4}) {
    const Weights w = one_step("cpg_cp" + std::to_string(cp), cp, "1", "--parallel.cp=" + std::to_string(cp));
    ASSERT_EQ(w.size(), wa.size()) << "cp " << cp;
    const auto got = grads(w);
    double worst = 0;
    std::string worst_name;
    for (const auto& [name, g] : ref) {
      ASSERT_TRUE(std::any_of(g.begin(), g.end(), [](double x) { return x != 0; }))
          << name << ": zero gradient, the check would be empty";
      const double e = rel_error(got.at(name), g);
      EXPECT_LE(e, 1e-5) << "cp " << cp << ": gradient of " << name;
      if (e > worst) worst = e, worst_name = name;
    }
    std::printf("cp %d: %zu gradient tensors, worst relative error %.2e (%s)\n", cp, ref.size(), worst,
                worst_name.c_str());
  }
}

TEST(ContextParallel, ContiguousShardingGivesTheSameNumbers) {
  RunResult ref = run_case("cp_ref_contig", 1, {});
  expect_same_run(ref, run_case("cp4_contig", 4, {"--parallel.cp=4", "--parallel.cp_sharding=contiguous"}),
                  "cp4 contiguous");
}

}  // namespace
}  // namespace lct::test
