// Context parallelism (ring attention): cp = 2, 4 reproduce cp = 1 on the same batch, for GQA
// ratios 1 and 4, with recompute, and combined with dp.
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

TEST(ContextParallel, ContiguousShardingGivesTheSameNumbers) {
  RunResult ref = run_case("cp_ref_contig", 1, {});
  expect_same_run(ref, run_case("cp4_contig", 4, {"--parallel.cp=4", "--parallel.cp_sharding=contiguous"}),
                  "cp4 contiguous");
}

}  // namespace
}  // namespace lct::test
