// Run identity and retention (issue: a different deck pointed at another run's out_dir resumed it,
// trained a stage nobody asked for, and keep_last deleted the checkpoint it had just written):
//  - checkpoint.resume = auto refuses another run's checkpoint, or one beyond the deck's steps,
//    with exit 2 on every rank, a message naming both values and the ways out, and nothing in
//    out_dir changed;
//  - keep_last prunes only this run's older checkpoints: never the file just written, never a
//    newer one, never another run's;
//  - `latest` names an existing complete checkpoint even when rank 0 is killed between the rename
//    of the new file and `latest`, or between `latest` and the pruning.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "train_harness.h"

namespace lct::test {
namespace {
namespace fs = std::filesystem;

// Every file under out_dir with its size and modification time: "nothing changed" is equality.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> snapshot(const std::string& dir) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[e.path().string()] = {e.file_size(), e.last_write_time()};
  return m;
}

std::string latest_of(const std::string& out) {
  std::ifstream f(out + "/checkpoints/latest");
  std::string name;
  f >> name;
  return name;
}

// A second deck: another run (its own name and sequence length; the same model shape, so that its
// weights would load), two stages of 2 steps, keep_last = 1: the case of the issue.
std::string other_deck(const std::string& corpus, const std::string& out) {
  return "[run]\nname = other\nout_dir = " + out +
         "\nhang_timeout = 120\n"
         "[model]\nvocab_size = 64\ndim = 32\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nffn_dim = 64\n"
         "[train]\nseq_len = 64\nmicro_batch = 1\ngrad_accum = 2\nsteps = 2\nlr = 1e-3\n"
         "[data]\ntrain = " + corpus + "\n"
         "[checkpoint]\nkeep_last = 1\n"
         "[stage1]\ntrain.steps = 2\n[stage2]\ntrain.steps = 2\n";
}

struct Runs {
  std::string dir, corpus, out;
  explicit Runs(const std::string& name) : dir(scratch_dir(name)) {
    corpus = dir + "/corpus.bin";
    out = dir + "/out";
    write_markov_corpus(corpus, 64, 20000, 3);
  }
  std::string first_deck() const { return tiny_deck(corpus, out) + "[checkpoint]\nevery = 3\nkeep_last = 2\n"; }
};

TEST(RunIdentity, ADifferentDeckInAnotherRunsOutDirIsRefusedAndNothingIsLost) {
  Runs r("identity_other_run");
  ASSERT_EQ(run_lctrain(2, r.dir, r.first_deck(), {"--train.steps=6"}).exit_code, 0);
  ASSERT_TRUE(fs::exists(checkpoint_path(r.out, 3)));
  ASSERT_TRUE(fs::exists(checkpoint_path(r.out, 6)));
  const auto before = snapshot(r.out);

  CommandResult b = run_lctrain(2, r.dir, other_deck(r.corpus, r.out), {});
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("is a checkpoint of another run"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("run.name = 'lctrain' in the checkpoint, 'other' in the deck"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("train.seq_len = 32 in the checkpoint, 64 in the deck"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("step_00000006.h5 (step 6"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("checkpoint.resume = none"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("run.out_dir"), std::string::npos) << b.output;
  EXPECT_EQ(b.output.find("resuming from"), std::string::npos) << b.output;
  EXPECT_EQ(snapshot(r.out), before) << "nothing in out_dir may change";
  EXPECT_EQ(latest_of(r.out), "step_00000006.h5");
}

TEST(RunIdentity, ACheckpointBeyondTheDecksStepsIsRefused) {
  Runs r("identity_beyond");
  ASSERT_EQ(run_lctrain(2, r.dir, r.first_deck(), {"--train.steps=6"}).exit_code, 0);
  const auto before = snapshot(r.out);
  CommandResult b = run_lctrain(2, r.dir, r.first_deck(), {"--train.steps=4"});
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("step_00000006.h5 (step 6, stage 1 step 6)"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("beyond the end of this deck's stage 1: train.steps = 4 (command line)"), std::string::npos)
      << b.output;
  EXPECT_NE(b.output.find("checkpoint.resume = none"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("raise train.steps to at least 6"), std::string::npos) << b.output;
  EXPECT_EQ(snapshot(r.out), before);
}

TEST(RunIdentity, KeepLastPrunesOnlyThisRunsOlderCheckpoints) {
  Runs r("identity_retention");
  ASSERT_EQ(run_lctrain(2, r.dir, r.first_deck(), {"--train.steps=6"}).exit_code, 0);
  // The other run, told to start from scratch in the same folder: its checkpoints (steps 2 and 4)
  // have lower numbers than the first run's (3 and 6). keep_last = 1 prunes its own step 2 when
  // it writes step 4; the first run's files and the file just written stay.
  CommandResult b = run_lctrain(2, r.dir, other_deck(r.corpus, r.out), {"--checkpoint.resume=none"});
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 3)));
  EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 6)));
  EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 4))) << "the checkpoint just written";
  EXPECT_FALSE(fs::exists(checkpoint_path(r.out, 2))) << "the other run's own older checkpoint";
  EXPECT_NE(b.output.find("deleted step_00000002.h5 (checkpoint.keep_last = 1)"), std::string::npos) << b.output;
  EXPECT_EQ(latest_of(r.out), "step_00000004.h5");
  // keep_last within one run: keep_last = 2 leaves the newest two (the first run's steps 3, 6 were
  // written with it; a further run to step 9 deletes step 3 only).
  CommandResult c = run_lctrain(2, r.dir, r.first_deck(), {"--train.steps=9"});
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_FALSE(fs::exists(checkpoint_path(r.out, 3)));
  EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 6)));
  EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 9)));
  EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 4))) << "another run's file is never pruned";
  EXPECT_EQ(latest_of(r.out), "step_00000009.h5");
}

TEST(RunIdentity, LatestNamesACompleteFileWhenKilledBetweenRenameAndPrune) {
  for (const char* where : {"renamed", "latest"}) {
    Runs r(std::string("identity_kill_") + where);
    const std::string deck = r.first_deck();
    ASSERT_EQ(run_lctrain(2, r.dir, deck, {"--train.steps=3"}).exit_code, 0);
    // Continue to step 6 (checkpoint.every = 3, keep_last = 1 so that the save would prune step 3)
    // and SIGKILL rank 0 at `where` while saving the step-6 checkpoint.
    CommandResult k = run_lctrain(2, r.dir, deck, {"--train.steps=6", "--checkpoint.keep_last=1"},
                                  std::string("LCT_DEBUG_KILL_AT=") + where + ":6");
    EXPECT_NE(k.exit_code, 0) << where << "\n" << k.output;
    EXPECT_NE(k.output.find("LCT_DEBUG_KILL_AT"), std::string::npos) << k.output;
    const std::string latest = latest_of(r.out);
    ASSERT_FALSE(latest.empty()) << where;
    const std::string path = r.out + "/checkpoints/" + latest;
    ASSERT_TRUE(fs::exists(path)) << where << ": latest names " << latest;
    EXPECT_EQ(latest, std::string(where) == "renamed" ? "step_00000003.h5" : "step_00000006.h5") << where;
    EXPECT_FALSE(read_checkpoint_weights(path).empty()) << where << ": " << path << " is complete";
    EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 3))) << where << ": not pruned before the kill";
    // The next run finds the newest complete checkpoint (step 6) and is done.
    CommandResult again = run_lctrain(2, r.dir, deck, {"--train.steps=6", "--checkpoint.keep_last=1"});
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_NE(again.output.find("all 1 stage(s) are complete"), std::string::npos) << again.output;
  }
}

// checkpoint.resume = PATH names a checkpoint on purpose, but one this deck cannot continue is an
// input error (both exited 0 with nothing trained): a stage the deck lacks, a step beyond its steps.
TEST(RunIdentity, ANamedCheckpointTheDeckCannotContinueIsAnInputError) {
  Runs r("identity_named_resume");
  const std::string other_out = r.dir + "/other";
  ASSERT_EQ(run_lctrain(2, r.dir, other_deck(r.corpus, other_out), {}).exit_code, 0);  // stages 1, 2: steps 2 + 2
  const std::string stage2 = checkpoint_path(other_out, 4);
  ASSERT_TRUE(fs::exists(stage2));
  CommandResult a = run_lctrain(2, r.dir, r.first_deck(), {"--checkpoint.resume=" + stage2});
  EXPECT_EQ(a.exit_code, 2) << a.output;
  EXPECT_NE(a.output.find("is a checkpoint of stage 2 but this deck defines 1 stage(s)"), std::string::npos) << a.output;
  ASSERT_EQ(run_lctrain(2, r.dir, r.first_deck(), {"--train.steps=6"}).exit_code, 0);
  CommandResult b = run_lctrain(2, r.dir, r.first_deck(),
                                {"--train.steps=3", "--checkpoint.resume=" + checkpoint_path(r.out, 6)});
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_NE(b.output.find("lies beyond this deck's stage 1: train.steps = 3"), std::string::npos) << b.output;
  // lcconvert from-hf writes a completed stage 0: named, it starts stage 1 (docs/checkpoint-format.md).
  const std::string imported = r.dir + "/imported.h5";
  ASSERT_EQ(run_command(bin_dir() + "/lcconvert from-hf " + data_dir() + "/hf/tiny_gqa2 " + imported).exit_code, 0);
  const std::string gqa2 = "[run]\nout_dir = " + r.dir + "/from_hf\n[model]\nvocab_size = 96\ndim = 64\nn_layers = 2\n"
                           "n_heads = 4\nn_kv_heads = 2\nhead_dim = 16\nffn_dim = 96\n[rope]\ntheta = 50000\n"
                           "[train]\nseq_len = 32\nmicro_batch = 1\nsteps = 2\n[data]\ntrain = " + r.corpus + "\n";
  CommandResult c = run_lctrain(2, r.dir, gqa2, {"--checkpoint.resume=" + imported});
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_TRUE(fs::exists(r.dir + "/from_hf/checkpoints/step_00000002.h5")) << c.output;
}

// A checkpoint that cannot be written (a full disk, seen before writing or by HDF5 half-way): exit 1
// on every rank naming the disk, the unfinished file removed, `latest` and the previous checkpoint
// kept (the disk-full run used to prune the good checkpoint, empty `latest` and segfault), and the
// next run resumes from that checkpoint.
TEST(RunIdentity, AFailedCheckpointWriteKeepsTheLastGoodOne) {
  struct Case {
    const char* name;
    std::string env, message;
  };
  for (const Case& c : {Case{"no_room", "LCT_DEBUG_CKPT_FREE_BYTES=1000", "MiB free; free space"},
                        Case{"write_fails", "LCT_DEBUG_CKPT_FSIZE=6:0:2000000", "is the disk full or the quota reached?"}}) {
    SCOPED_TRACE(c.name);
    Runs r(std::string("identity_disk_") + c.name);
    const std::string deck = r.first_deck();
    ASSERT_EQ(run_lctrain(2, r.dir, deck, {"--train.steps=3"}).exit_code, 0);
    // (the free-space hook holds for every save of this run: its first is step 6)
    CommandResult k = run_lctrain(2, r.dir, deck, {"--train.steps=6", "--checkpoint.keep_last=1"}, c.env);
    EXPECT_EQ(k.exit_code, 1) << k.output;
    EXPECT_NE(k.output.find(c.message), std::string::npos) << k.output;
    EXPECT_NE(k.output.find("the previous checkpoints are kept"), std::string::npos) << k.output;
    EXPECT_EQ(latest_of(r.out), "step_00000003.h5");
    EXPECT_FALSE(read_checkpoint_weights(checkpoint_path(r.out, 3)).empty()) << "step 3 complete and kept";
    EXPECT_FALSE(fs::exists(checkpoint_path(r.out, 6)));
    EXPECT_FALSE(fs::exists(checkpoint_path(r.out, 6) + ".tmp")) << "the unfinished file is removed";
    CommandResult again = run_lctrain(2, r.dir, deck, {"--train.steps=6", "--checkpoint.keep_last=1"});
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_NE(again.output.find("step_00000003.h5"), std::string::npos) << again.output;
    EXPECT_EQ(latest_of(r.out), "step_00000006.h5");
  }
}

}  // namespace
}  // namespace lct::test
