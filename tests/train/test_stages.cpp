// Progressive training in one run (docs/longctx.md): stage 1 at 32 tokens, theta 10000, then stage 2
// at 64 tokens with theta 40000. Stage 2 starts from stage 1's final checkpoint bit for bit, with
// AdamW's moments and step at zero and the data cursor at 0, writes its theta into its checkpoints,
// numbers its steps after stage 1's, and starts from where stage 1 got: its first loss lies below
// stage 1's first loss by at least half of stage 1's drop. What a stage began with is seen through
// LCT_DEBUG_STAGE_START_DIR (src/train/trainer.cpp), which saves it before the stage's first step.
#include <gtest/gtest.h>

#include "ckpt/checkpoint.h"
#include "io/h5file.h"
#include "train_harness.h"

namespace lct::test {
namespace {

constexpr int64_t kSteps1 = 12, kSteps2 = 4;

TEST(Stages, StageTwoStartsFromStageOneWithFreshOptimizerAndNewTheta) {
  const std::string dir = scratch_dir("stages_two");
  const std::string corpus = dir + "/corpus.bin", out = dir + "/out", start = dir + "/start";
  write_markov_corpus(corpus, 64, 20000, 13);
  const std::string deck = tiny_deck(corpus, out) +
                           "[checkpoint]\nkeep_last = 20\n"
                           "[stage1]\ntrain.seq_len = 32\ntrain.steps = " + std::to_string(kSteps1) +
                           "\n[stage2]\ntrain.seq_len = 64\ntrain.steps = " + std::to_string(kSteps2) +
                           "\nrope.theta = 40000\n";
  CommandResult r = run_lctrain(2, dir, deck, {}, "LCT_DEBUG_STAGE_START_DIR=" + start);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // Stage 2's first weights are stage 1's final checkpoint, bit for bit; its moments start at zero.
  const std::string end1 = checkpoint_path(out, kSteps1), begin2 = checkpoint_path(start + "/stage2", kSteps1);
  const auto w_end1 = read_checkpoint_weights(end1), w_begin2 = read_checkpoint_weights(begin2);
  ASSERT_FALSE(w_end1.empty());
  ASSERT_EQ(w_begin2.size(), w_end1.size());
  for (const auto& [name, w] : w_end1) EXPECT_EQ(w_begin2.at(name), w) << name;
  {
    H5File f(begin2, H5File::Read);
    ASSERT_TRUE(f.exists("/optim/exp_avg"));
    for (const std::string g : {"/optim/exp_avg", "/optim/exp_avg_sq"})
      for (const auto& name : f.list(g)) {
        size_t nonzero = 0;
        for (float v : f.read_f32(g + "/" + name)) nonzero += v != 0.0f;
        EXPECT_EQ(nonzero, 0u) << g << "/" << name << " at the start of stage 2";
      }
    // And stage 1 did leave moments behind: the zeros above are a reset, not an empty optimizer.
    H5File e(end1, H5File::Read);
    size_t nonzero = 0;
    for (float v : e.read_f32("/optim/exp_avg_sq/model.norm.weight")) nonzero += v != 0.0f;
    EXPECT_GT(nonzero, 0u);
  }
  const CheckpointMeta s1 = read_checkpoint_meta_local(end1), s2_start = read_checkpoint_meta_local(begin2);
  EXPECT_EQ(s1.state.optim_t, kSteps1);
  EXPECT_EQ(s2_start.state.optim_t, 0) << "AdamW's step count (bias correction) restarts with the stage";
  EXPECT_EQ(s2_start.state.data_cursor, 0) << "stage 2 reads its data from the start";
  EXPECT_EQ(s2_start.state.stage, 2);
  EXPECT_EQ(s2_start.state.step, kSteps1);

  // Stage 2's checkpoint carries its own theta and length; stage 1's its own.
  const CheckpointMeta s2 = read_checkpoint_meta_local(checkpoint_path(out, kSteps1 + kSteps2));
  EXPECT_EQ(s1.rope.theta, 10000.0);
  EXPECT_EQ(s1.seq_len, 32);
  EXPECT_EQ(s2.rope.theta, 40000.0);
  EXPECT_EQ(s2.seq_len, 64);
  EXPECT_EQ(s2.state.stage, 2);
  EXPECT_EQ(s2.state.stage_step, kSteps2);
  EXPECT_EQ(s2.state.optim_t, kSteps2);
  EXPECT_EQ(s2.state.data_cursor, s1.state.data_cursor / kSteps1 * kSteps2) << "same samples per step, from 0";
  {
    H5File f(checkpoint_path(out, kSteps1 + kSteps2), H5File::Read);
    EXPECT_EQ(f.attr_f64("/", "rope_theta"), 40000.0);
  }

  // Step numbers continue: 1..12 in stage 1, 13..16 in stage 2, each logged once.
  const auto rows = read_metrics(out);
  ASSERT_EQ(rows.size(), size_t(kSteps1 + kSteps2));
  int64_t expect_step = 1;
  for (const auto& [step, row] : rows) {
    EXPECT_EQ(step, expect_step++);
    const bool two = step > kSteps1;
    EXPECT_EQ(row["stage"].get<int64_t>(), two ? 2 : 1) << "step " << step;
    EXPECT_EQ(row["stage_step"].get<int64_t>(), two ? step - kSteps1 : step) << "step " << step;
    EXPECT_EQ(row["rope_theta"].get<double>(), two ? 40000.0 : 10000.0) << "step " << step;
  }

  // Stage 2 continues the learning: its first loss keeps at least half of stage 1's drop.
  const double first1 = rows.at(1)["loss"], last1 = rows.at(kSteps1)["loss"], first2 = rows.at(kSteps1 + 1)["loss"];
  std::printf("stage 1: loss %.4f -> %.4f; stage 2 starts at %.4f\n", first1, last1, first2);
  ASSERT_GT(first1 - last1, 0.1 * first1) << "stage 1 must learn for the check below to mean anything";
  EXPECT_LE(first2, first1 - 0.5 * (first1 - last1));
}

}  // namespace
}  // namespace lct::test
