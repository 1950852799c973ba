// Data parallelism: the same global batch over dp = 1, 2, 4 (and ZeRO-1) gives the same loss
// trajectory and final weights (AdamW with weight decay, clipping active, loss falling), and each
// rank processes global/dp sequences per step.
#include "equivalence.h"

namespace lct::test {
namespace {

TEST(DataParallel, SameTrajectoryAndWeightsAsOneRank) {
  RunResult ref = run_case("dp_ref", 1, {"--train.grad_accum=4"});
  expect_learning(ref);
  struct Case {
    const char* name;
    int np;
    std::vector<std::string> ov;
    int per_rank;
  } cases[] = {
      {"dp2", 2, {"--train.grad_accum=2"}, 2},
      {"dp4", 4, {"--train.grad_accum=1"}, 1},
      {"dp2_zero1", 2, {"--train.grad_accum=2", "--parallel.zero=1"}, 2},
      {"dp4_zero1", 4, {"--train.grad_accum=1", "--parallel.zero=1"}, 1},
  };
  for (const Case& c : cases) {
    RunResult got = run_case(c.name, c.np, c.ov);
    expect_same_run(ref, got, c.name);
    for (const auto& kv : got.rows) {
      EXPECT_EQ(kv.second["global_batch"].get<int>(), 4) << c.name;
      for (const auto& n : kv.second["samples_per_rank"]) EXPECT_EQ(n.get<int>(), c.per_rank) << c.name;
    }
  }
}

}  // namespace
}  // namespace lct::test
