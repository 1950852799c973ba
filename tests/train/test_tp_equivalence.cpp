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

// Vocabulary padding (model.make_vocab_size_divisible_by, rows per tp rank padded for aligned
// GEMMs) changes nothing a user sees: with a vocabulary that no tp divides (67), no padding,
// padding at tp 1, and uneven slices at tp 2 and 4 give the same run, and the checkpoint holds
// exactly vocab_size rows.
TEST(TensorParallel, VocabularyPaddingIsInvisible) {
  const std::vector<std::string> v = {"--model.vocab_size=67", "--model.n_kv_heads=4"};
  auto with = [&](std::vector<std::string> o) {
    o.insert(o.end(), v.begin(), v.end());
    return o;
  };
  RunResult ref = run_case("vocab67_unpadded", 1, with({"--model.make_vocab_size_divisible_by=1"}));
  expect_learning(ref);
  ASSERT_EQ(ref.weights.at("model.embed_tokens.weight").size(), 67u * 32u);
  ASSERT_EQ(ref.weights.at("lm_head.weight").size(), 67u * 32u);
  expect_same_run(ref, run_case("vocab67_pad128", 1, with({})), "tp1 padded to 128");
  expect_same_run(ref, run_case("vocab67_tp2", 2, with({"--parallel.tp=2"})), "tp2 padded");
  expect_same_run(ref, run_case("vocab67_tp4", 4, with({"--parallel.tp=4"})), "tp4 padded");
}

}  // namespace
}  // namespace lct::test
