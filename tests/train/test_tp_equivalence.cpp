// Tensor parallelism: tp = 2 and 4 (with and without sequence parallelism), and tp 2 x cp 2 x
// dp 2 on 8 ranks, reproduce tp = 1, for GQA ratios 1 and 4 where tp divides the KV heads.
#include "equivalence.h"

namespace lct::test {
namespace {

TEST(TensorParallel, GqaRatio1) {
  const std::vector<std::string> m = {"--model.n_kv_heads=4"};
  auto with = [&](std::vector<std::string> v) {
    v.insert(v.end(), m.begin(), m.end());
    return v;
  };
  RunResult ref = run_case("tp_ref_gqa1", 1, with({}));
  expect_learning(ref);
  expect_same_run(ref, run_case("tp2_gqa1", 2, with({"--parallel.tp=2"})), "tp2");
  expect_same_run(ref, run_case("tp2_nosp_gqa1", 2, with({"--parallel.tp=2", "--parallel.sequence_parallel=false"})),
                  "tp2 no-sp");
  expect_same_run(ref, run_case("tp4_gqa1", 4, with({"--parallel.tp=4"})), "tp4");
  expect_same_run(ref, run_case("tp4_nosp_gqa1", 4, with({"--parallel.tp=4", "--parallel.sequence_parallel=false"})),
                  "tp4 no-sp");
  expect_same_run(ref, run_case("tp2cp2dp2_gqa1", 8,
                                with({"--parallel.tp=2", "--parallel.cp=2", "--train.grad_accum=2", "--parallel.zero=1"})),
                  "tp2 cp2 dp2 zero1");
}

TEST(TensorParallel, GqaRatio4) {
  const std::vector<std::string> m = {"--model.n_heads=8", "--model.n_kv_heads=2"};
  auto with = [&](std::vector<std::string> v) {
    v.insert(v.end(), m.begin(), m.end());
    return v;
  };
  RunResult ref = run_case("tp_ref_gqa4", 1, with({}));
  expect_learning(ref);
  expect_same_run(ref, run_case("tp2_gqa4", 2, with({"--parallel.tp=2"})), "tp2");
  expect_same_run(ref, run_case("tp2_nosp_gqa4", 2, with({"--parallel.tp=2", "--parallel.sequence_parallel=false"})),
                  "tp2 no-sp");
  expect_same_run(ref, run_case("tp2cp2dp2_gqa4", 8,
                                with({"--parallel.tp=2", "--parallel.cp=2", "--train.grad_accum=2",
                                      "--train.recompute=layer"})),
                  "tp2 cp2 dp2 recompute");
}

TEST(TensorParallel, TiedEmbeddings) {
  RunResult ref = run_case("tp_ref_tied", 1, {"--model.tie_embeddings=true"});
  expect_same_run(ref, run_case("tp2_tied", 2, {"--model.tie_embeddings=true", "--parallel.tp=2"}), "tp2 tied");
}

}  // namespace
}  // namespace lct::test
