// The LR schedule on resume (Megatron's rule): raising train.steps continues the stage with the
// decay recomputed to the new end and the log says so; any other change of a schedule key is an
// input error unless the deck picks checkpoint.override_lr_schedule (the deck's schedule) or
// checkpoint.use_checkpoint_lr_schedule (the checkpoint's). The LR of each step is read back from
// metrics.jsonl and compared with the schedule formula.
#include <gtest/gtest.h>

#include <cmath>

#include "train_harness.h"

namespace lct::test {
namespace {

// optim/lr_schedule.h, restated: linear warmup, then cosine to min_lr at `steps`.
double cosine(int64_t step, int64_t steps, double lr, double min_lr, int64_t warmup) {
  if (warmup > 0 && step <= warmup) return lr * double(step) / double(warmup);
  const double p = std::min(1.0, std::max(0.0, double(step - warmup) / double(std::max<int64_t>(1, steps - warmup))));
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * p));
}

struct TrainRun {
  std::string dir, corpus, out, deck;
  explicit TrainRun(const std::string& name) : dir(scratch_dir(name)) {
    corpus = dir + "/corpus.bin";
    out = dir + "/out";
    write_markov_corpus(corpus, 64, 20000, 9);
    // lr 3e-3, warmup 2, cosine to 0 (tiny_deck), 6 steps.
    deck = tiny_deck(corpus, out) + "[checkpoint]\nkeep_last = 5\n";
  }
  double lr_at_step(int64_t step) const { return read_metrics(out).at(step)["lr"].get<double>(); }
};

void expect_lr(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-12 + 1e-9 * want) << what;
}

TEST(ResumeSchedule, RaisingTrainStepsContinuesTheStageAndSaysHowTheLrContinues) {
  TrainRun r("sched_raise");
  ASSERT_EQ(run_lctrain(2, r.dir, r.deck, {"--train.steps=4"}).exit_code, 0);
  expect_lr(r.lr_at_step(4), 0.0, "the 4-step schedule ends at min_lr");
  CommandResult c = run_lctrain(2, r.dir, r.deck, {"--train.steps=6"});
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("resuming stage 1 at step 5"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("LR schedule: train.steps raised from 4 to 6 since the checkpoint"), std::string::npos)
      << c.output;
  EXPECT_NE(c.output.find("recomputed to reach min_lr 0 at step 6 instead of 4"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("checkpoint.use_checkpoint_lr_schedule"), std::string::npos) << c.output;
  expect_lr(r.lr_at_step(5), cosine(5, 6, 3e-3, 0, 2), "step 5 on the 6-step schedule");
  expect_lr(r.lr_at_step(6), 0.0, "step 6");
}

TEST(ResumeSchedule, AnotherScheduleChangeIsAnInputErrorUnlessTheDeckSaysWhichToUse) {
  TrainRun r("sched_change");
  ASSERT_EQ(run_lctrain(2, r.dir, r.deck, {"--train.steps=6"}, "LCT_DEBUG_STOP_AFTER_STEP=3").exit_code, 75);
  // A different peak LR on resume: refused, naming both values and the two keys.
  CommandResult c = run_lctrain(2, r.dir, r.deck, {"--train.steps=6", "--train.lr=1e-3"});
  EXPECT_EQ(c.exit_code, 2) << c.output;
  EXPECT_NE(c.output.find("the LR schedule changed since"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("train.lr = 0.001 in the deck (command line), 0.003 in the checkpoint"), std::string::npos)
      << c.output;
  EXPECT_NE(c.output.find("checkpoint.override_lr_schedule = true"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("checkpoint.use_checkpoint_lr_schedule = true"), std::string::npos) << c.output;
  EXPECT_EQ(read_metrics(r.out).size(), 3u) << "nothing trained";
  // Lowering train.steps (still after the checkpoint's step) changes the decay too: refused.
  c = run_lctrain(2, r.dir, r.deck, {"--train.steps=5"});
  EXPECT_EQ(c.exit_code, 2) << c.output;
  EXPECT_NE(c.output.find("train.steps = 5 in the deck (command line), 6 in the checkpoint"), std::string::npos)
      << c.output;
  // Both keys at once: refused.
  c = run_lctrain(2, r.dir, r.deck,
                  {"--train.steps=6", "--checkpoint.override_lr_schedule=true", "--checkpoint.use_checkpoint_lr_schedule=true"});
  EXPECT_EQ(c.exit_code, 2) << c.output;
  EXPECT_NE(c.output.find("are both true"), std::string::npos) << c.output;
  // The checkpoint's schedule: lr 3e-3 over 6 steps, whatever the deck says.
  c = run_lctrain(2, r.dir, r.deck, {"--train.steps=6", "--train.lr=1e-3", "--checkpoint.use_checkpoint_lr_schedule=true"},
                  "LCT_DEBUG_STOP_AFTER_STEP=4");
  ASSERT_EQ(c.exit_code, 75) << c.output;
  EXPECT_NE(c.output.find("LR schedule: checkpoint.use_checkpoint_lr_schedule = true: the checkpoint's schedule continues"),
            std::string::npos)
      << c.output;
  expect_lr(r.lr_at_step(4), cosine(4, 6, 3e-3, 0, 2), "use_checkpoint: step 4");
  // The deck's schedule from step 5 on: lr 1e-3 over 6 steps.
  c = run_lctrain(2, r.dir, r.deck, {"--train.steps=6", "--train.lr=1e-3", "--checkpoint.override_lr_schedule=true"});
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("LR schedule: checkpoint.override_lr_schedule = true: the deck's schedule replaces"),
            std::string::npos)
      << c.output;
  expect_lr(r.lr_at_step(5), cosine(5, 6, 1e-3, 0, 2), "override: step 5");
}

}  // namespace
}  // namespace lct::test
