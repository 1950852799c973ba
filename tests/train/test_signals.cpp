// Ctrl-C: SIGINT to a single `lctrain` (no mpirun) is handled like SIGTERM/SIGUSR1: the step in
// progress finishes, a checkpoint is written, the exit code is 75 and the next run resumes from it.
// A second SIGINT ends the process at once with 130 and keeps the checkpoints already written.
// Under mpirun, SIGUSR1 to mpirun reaches every rank: checkpoint, 75 from mpirun too; Ctrl-C
// (SIGINT) to mpirun: the ranks checkpoint on mpirun's SIGTERM, mpirun itself exits 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "train_harness.h"

namespace lct::test {
namespace {
namespace fs = std::filesystem;

struct TrainRun {
  std::string dir, corpus, out, deck;
  explicit TrainRun(const std::string& name) : dir(scratch_dir(name)) {
    corpus = dir + "/corpus.bin";
    out = dir + "/out";
    write_markov_corpus(corpus, 64, 200000, 4);
    // Steps of a few tens of milliseconds, far more of them than the test waits for.
    deck = tiny_deck(corpus, out) + "[checkpoint]\nkeep_last = 5\n";
    std::ofstream(dir + "/run.deck") << deck;
  }
  // Starts `launcher lctrain run.deck args` in the background; for each (pattern, signal) waits
  // for a line of its output matching the pattern (grep -E), then sends the signal (kill argument)
  // to it; reports the exit code ("exit=N") and the output.
  CommandResult signal_run(const std::string& launcher, const std::string& args,
                           const std::vector<std::pair<std::string, std::string>>& signals,
                           const std::string& env = "") const {
    const std::string script = dir + "/sig.sh";
    {
      std::ofstream f(script);
      // set -m: the background job gets its own process group and SIGINT is not ignored in it, as
      // for a command typed at a terminal.
      f << "set -m\ncd " << dir << "\n"
        << env << " " << launcher << " " << bin_dir() << "/lctrain run.deck " << args << " > run.log 2>&1 &\n"
        << "pid=$!\n";
      for (const auto& s : signals)
        f << "for i in $(seq 1 1200); do grep -qE '" << s.first << "' run.log && break; sleep 0.05; done\n"
          << "kill " << s.second << " $pid\n";
      f << "wait $pid\necho \"exit=$?\"\ncat run.log\n";
    }
    return run_command("bash " + script);
  }
};

int exit_of(const CommandResult& r) {
  const size_t p = r.output.find("exit=");
  return p == std::string::npos ? -1 : std::atoi(r.output.c_str() + p + 5);
}

TEST(Signals, SigintInASingleProcessCheckpointsAndExits75) {
  TrainRun r("sigint_single");
  CommandResult c = r.signal_run("", "--train.steps=100000 --train.seq_len=256", {{"^step +3/", "-INT"}});
  ASSERT_EQ(exit_of(c), 75) << c.output;
  EXPECT_NE(c.output.find("SIGINT: finishing this step, then saving a checkpoint"), std::string::npos) << c.output;
  const size_t p = c.output.find("stopping after step ");
  ASSERT_NE(p, std::string::npos) << c.output;
  const long step = std::atol(c.output.c_str() + p + 20);
  EXPECT_NE(c.output.find("on signal 2 (SIGINT, Ctrl-C): checkpoint saved; exit code 75"), std::string::npos) << c.output;
  ASSERT_TRUE(fs::exists(checkpoint_path(r.out, step))) << c.output;
  // Run again: resumes after that step.
  CommandResult again = run_command("cd " + r.dir + " && " + bin_dir() + "/lctrain run.deck --train.steps=" +
                                    std::to_string(step + 2) + " --train.seq_len=256 "
                                    "--checkpoint.override_lr_schedule=true");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("resuming stage 1 at step " + std::to_string(step + 1)), std::string::npos)
      << again.output;
}

TEST(Signals, ASecondSigintQuitsAtOnceWith130AndKeepsTheCheckpoints) {
  TrainRun r("sigint_twice");
  ASSERT_EQ(run_command("cd " + r.dir + " && " + bin_dir() + "/lctrain run.deck --train.steps=2").exit_code, 0);
  // Resume; the first Ctrl-C stops after the step in progress, whose checkpoint the writer then
  // pauses half-way through (test hook); the second Ctrl-C arrives during that pause.
  CommandResult c = r.signal_run("", "--train.steps=100000 --checkpoint.override_lr_schedule=true",
                                 {{"^step +4/", "-INT"}, {"paused half-way", "-INT"}}, "LCT_DEBUG_CKPT_PAUSE=60");
  EXPECT_EQ(exit_of(c), 130) << c.output;
  EXPECT_NE(c.output.find("second SIGINT: quitting now (exit code 130)"), std::string::npos) << c.output;
  EXPECT_EQ(c.output.find("stopping after step"), std::string::npos) << c.output;
  EXPECT_TRUE(fs::exists(checkpoint_path(r.out, 2))) << c.output;
  std::ifstream latest(r.out + "/checkpoints/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step_00000002.h5");
  // The next run resumes from that checkpoint and removes the half-written file.
  CommandResult again = run_command("cd " + r.dir + " && " + bin_dir() + "/lctrain run.deck --train.steps=3 "
                                    "--checkpoint.override_lr_schedule=true");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("resuming stage 1 at step 3"), std::string::npos) << again.output;
  for (const auto& e : fs::directory_iterator(r.out + "/checkpoints"))
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
}

TEST(Signals, Sigusr1ToMpirunCheckpointsAndMpirunExits75) {
  TrainRun r("sigusr1_mpirun");
  CommandResult c =
      r.signal_run("mpirun --oversubscribe --bind-to none -np 2", "--train.steps=100000", {{"^step +3/", "-USR1"}});
  EXPECT_EQ(exit_of(c), 75) << c.output;
  EXPECT_NE(c.output.find("on signal 10 (SIGUSR1): checkpoint saved; exit code 75"), std::string::npos) << c.output;
}

TEST(Signals, CtrlCOnMpirunCheckpointsButMpirunReports1) {
  // What docs/exit-codes.md says: Ctrl-C reaches mpirun only; mpirun passes SIGTERM to the ranks
  // odls_base_sigkill_timeout seconds later and SIGKILL as long again after that; with time enough
  // for a step and its checkpoint (3 s here; Open MPI's default is 1 s) the ranks checkpoint and
  // exit 75, while mpirun itself exits 1. The checkpoint is complete. (mpirun stops reading the
  // ranks' output at Ctrl-C: a progress line per millisecond-step would fill the pipe and block
  // rank 0 before the SIGTERM comes, so the lines are rare here, as they are for real steps.)
  TrainRun r("sigint_mpirun");
  CommandResult c = r.signal_run("mpirun --oversubscribe --bind-to none --mca odls_base_sigkill_timeout 3 -np 2",
                                 "--train.steps=100000 --train.log_every=100000", {{"^step +1/", "-INT"}});
  EXPECT_EQ(exit_of(c), 1) << c.output;
  const size_t p = c.output.find("stopping after step ");
  ASSERT_NE(p, std::string::npos) << c.output;
  const long step = std::atol(c.output.c_str() + p + 20);
  EXPECT_NE(c.output.find("on signal 15 (SIGTERM): checkpoint saved; exit code 75"), std::string::npos) << c.output;
  EXPECT_FALSE(read_checkpoint_weights(checkpoint_path(r.out, step)).empty()) << c.output;
}

}  // namespace
}  // namespace lct::test
