// Checkpoints: exact resume (bit for bit) with ZeRO-1, accumulation and a stop inside the LR
// warmup; resume on other layouts (resharding); a writer killed half-way leaves the previous
// checkpoint in use; truncated and corrupt files give the documented error; each rank writes
// only its own share.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "train_harness.h"

namespace lct::test {
namespace {
namespace fs = std::filesystem;

struct Dir {
  std::string dir, corpus, out, deck;
  explicit Dir(const std::string& name) : dir(scratch_dir(name)) {
    corpus = dir + "/corpus.bin";
    out = dir + "/out";
    write_markov_corpus(corpus, 64, 20000, 11);
    deck = tiny_deck(corpus, out) + "[checkpoint]\nkeep_last = 5\n";
  }
};

const std::vector<std::string> kTen = {"--train.steps=10", "--train.warmup_steps=8"};

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(CheckpointResume, FiveAndFiveEqualsTenBitForBit) {
  const std::vector<std::string> layout = {"--parallel.zero=1", "--train.grad_accum=2"};  // dp 2 on 2 ranks
  Dir a("resume_straight"), b("resume_broken");
  ASSERT_EQ(run_lctrain(2, a.dir, a.deck, plus(kTen, layout)).exit_code, 0);
  CommandResult first = run_lctrain(2, b.dir, b.deck, plus(kTen, layout), "LCT_DEBUG_STOP_AFTER_STEP=5");
  EXPECT_EQ(first.exit_code, 75) << first.output;  // checkpointed, requeue me
  ASSERT_TRUE(fs::exists(checkpoint_path(b.out, 5)));
  EXPECT_FALSE(fs::exists(checkpoint_path(b.out, 6)));
  CommandResult second = run_lctrain(2, b.dir, b.deck, plus(kTen, layout));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("resuming stage 1 at step 6"), std::string::npos) << second.output;
  auto la = losses(read_metrics(a.out)), lb = losses(read_metrics(b.out));
  ASSERT_EQ(la.size(), 10u);
  ASSERT_EQ(lb.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;  // bit for bit
  auto wa = read_checkpoint_weights(checkpoint_path(a.out, 10)), wb = read_checkpoint_weights(checkpoint_path(b.out, 10));
  ASSERT_FALSE(wa.empty());
  for (const auto& kv : wa) EXPECT_EQ(kv.second, wb[kv.first]) << kv.first;
}

TEST(CheckpointResume, ReshardsToOtherLayouts) {
  Dir a("reshard_straight");
  const std::vector<std::string> saved = {"--parallel.tp=2", "--parallel.cp=2"};
  ASSERT_EQ(run_lctrain(4, a.dir, a.deck, plus(kTen, saved)).exit_code, 0);
  const auto ref = losses(read_metrics(a.out));
  const auto ref_w = read_checkpoint_weights(checkpoint_path(a.out, 10));
  struct Case {
    const char* name;
    int np;
    std::vector<std::string> layout;
  } cases[] = {{"reshard_tp1_cp4", 4, {"--parallel.tp=1", "--parallel.cp=4"}},
               {"reshard_dp2", 2, {"--parallel.tp=1", "--parallel.cp=1", "--train.grad_accum=2"}},
               {"reshard_dp2_zero1", 2, {"--parallel.zero=1", "--train.grad_accum=2"}}};
  for (const Case& c : cases) {
    Dir b(c.name);
    ASSERT_EQ(run_lctrain(4, b.dir, b.deck, plus(kTen, saved), "LCT_DEBUG_STOP_AFTER_STEP=5").exit_code, 75);
    CommandResult r = run_lctrain(c.np, b.dir, b.deck, plus(kTen, c.layout));
    ASSERT_EQ(r.exit_code, 0) << c.name << "\n" << r.output;
    const auto got = losses(read_metrics(b.out));
    ASSERT_EQ(got.size(), 10u) << c.name;
    for (size_t i = 0; i < 10; ++i) EXPECT_LE(std::abs(got[i] - ref[i]) / ref[i], 1e-5) << c.name << " step " << i + 1;
    std::string worst;
    EXPECT_LE(max_weight_rel_error(read_checkpoint_weights(checkpoint_path(b.out, 10)), ref_w, &worst), 1e-5)
        << c.name << " " << worst;
  }
}

TEST(CheckpointResume, SavedAtTp1ResumesAtTp2) {
  Dir a("tp1_straight"), b("tp1_to_tp2");
  ASSERT_EQ(run_lctrain(2, a.dir, a.deck, plus(kTen, {"--train.grad_accum=2"})).exit_code, 0);  // dp 2, tp 1
  ASSERT_EQ(run_lctrain(2, b.dir, b.deck, plus(kTen, {"--train.grad_accum=2"}), "LCT_DEBUG_STOP_AFTER_STEP=5").exit_code,
            75);
  CommandResult r = run_lctrain(2, b.dir, b.deck, plus(kTen, {"--parallel.tp=2"}));  // dp 1, tp 2
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = losses(read_metrics(a.out)), got = losses(read_metrics(b.out));
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_LE(std::abs(got[i] - ref[i]) / ref[i], 1e-5) << "step " << i + 1;
  std::string worst;
  EXPECT_LE(max_weight_rel_error(read_checkpoint_weights(checkpoint_path(b.out, 10)),
                                 read_checkpoint_weights(checkpoint_path(a.out, 10)), &worst),
            1e-5)
      << worst;
}

TEST(CheckpointResume, WriterKilledHalfWayLeavesThePreviousCheckpointInUse) {
  Dir a("kill_straight"), b("kill_broken");
  const std::vector<std::string> ov = {"--train.steps=6", "--checkpoint.every=3"};
  ASSERT_EQ(run_lctrain(2, a.dir, a.deck, ov).exit_code, 0);
  ASSERT_EQ(run_lctrain(2, b.dir, b.deck, ov, "LCT_DEBUG_STOP_AFTER_STEP=3").exit_code, 75);
  const std::string tmp = checkpoint_path(b.out, 6) + ".tmp";
  // Run on with the writer pausing half-way through each file; SIGKILL the ranks while the
  // step-6 file is half written.
  const std::string deck = b.dir + "/run.deck";
  const std::string script = b.dir + "/kill.sh";
  {
    std::ofstream f(script);
    f << "cd " << b.dir << "\n"
      << "LCT_DEBUG_CKPT_PAUSE=60 mpirun --oversubscribe --bind-to none -np 2 " << bin_dir() << "/lctrain " << deck
      << " --train.steps=6 --checkpoint.every=3 > pause.log 2>&1 &\n"
      << "for i in $(seq 1 300); do grep -q 'paused half-way' pause.log 2>/dev/null && break; sleep 0.1; done\n"
      << "test -e " << tmp << " && echo TMP_EXISTED\n"
      << "pkill -9 -f '" << bin_dir() << "/lctrain " << deck << "'\n"
      << "wait\n";
  }
  CommandResult k = run_command("bash " + script);
  EXPECT_NE(k.output.find("TMP_EXISTED"), std::string::npos) << k.output;
  EXPECT_TRUE(fs::exists(checkpoint_path(b.out, 3)));
  EXPECT_FALSE(fs::exists(checkpoint_path(b.out, 6)));
  CommandResult r = run_lctrain(2, b.dir, b.deck, ov);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming stage 1 at step 4"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp)) << "the stale temporary file is cleaned up by the next save";
  const auto la = losses(read_metrics(a.out)), lb = losses(read_metrics(b.out));
  ASSERT_EQ(lb.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;
}

TEST(CheckpointResume, TruncatedOrCorruptFilesGiveTheDocumentedError) {
  Dir b("corrupt");
  ASSERT_EQ(run_lctrain(2, b.dir, b.deck, {"--checkpoint.every=2", "--train.steps=4"}).exit_code, 0);
  const std::string good = checkpoint_path(b.out, 2), newest = checkpoint_path(b.out, 4);
  // Truncated: given explicitly, it is an input error naming the file on every rank.
  const std::string cut = b.dir + "/truncated.h5";
  fs::copy_file(newest, cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  CommandResult r = run_lctrain(2, b.dir, b.deck, {"--train.steps=6", "--checkpoint.resume=" + cut});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("truncated.h5"), std::string::npos) << r.output;
  // Corrupt bytes in the middle of the metadata.
  const std::string bad = b.dir + "/corrupt.h5";
  fs::copy_file(good, bad);
  {
    std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write("garbage!garbage!", 16);
  }
  r = run_lctrain(2, b.dir, b.deck, {"--train.steps=6", "--checkpoint.resume=" + bad});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("corrupt.h5"), std::string::npos) << r.output;
  // resume = auto skips a truncated newest file and uses the previous valid one.
  fs::resize_file(newest, fs::file_size(newest) / 3);
  r = run_lctrain(2, b.dir, b.deck, {"--train.steps=6"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipping checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming stage 1 at step 3"), std::string::npos) << r.output;
}

TEST(CheckpointResume, EachRankWritesOnlyItsShare) {
  Dir z("share_zero1"), r0("share_zero0");
  ASSERT_EQ(run_lctrain(4, z.dir, z.deck, {"--parallel.zero=1", "--train.grad_accum=1"}).exit_code, 0);
  ASSERT_EQ(run_lctrain(2, r0.dir, r0.deck, {"--parallel.tp=2"}).exit_code, 0);
  auto event = [](const std::string& out) {
    std::ifstream f(out + "/metrics.jsonl");
    std::string line;
    nlohmann::json ev;
    while (std::getline(f, line))
      if (line.find("\"checkpoint\"") != std::string::npos) ev = nlohmann::json::parse(line);
    return ev;
  };
  nlohmann::json e = event(z.out);
  ASSERT_FALSE(e.is_null());
  // A rank's ZeRO shard is a quarter of its flat buffer, which includes the vocabulary padding
  // (not stored in the file): weights + 2 moments of at most that much.
  const int64_t model = e["model_bytes"], flat = e["flat_param_bytes"], total = e["bytes"];
  for (const auto& b : e["bytes_per_rank"]) EXPECT_LE(b.get<int64_t>(), 3 * (flat / 4 + 64)) << e.dump();
  EXPECT_EQ(total, 3 * model) << "every byte written once";
  // tp = 2: each rank writes its own tp slice, half the split tensors' bytes; the replicated norm
  // weights (2 n_layers + 1 vectors of dim, ~0.7% of this model) are written once, by tp rank 0.
  e = event(r0.out);
  const int64_t tp_total = e["bytes"];
  int64_t tp_sum = 0;
  for (const auto& b : e["bytes_per_rank"]) {
    EXPECT_LE(b.get<int64_t>(), tp_total / 2 + tp_total / 100) << e.dump();
    tp_sum += b.get<int64_t>();
  }
  EXPECT_EQ(tp_sum, tp_total) << "every byte written once";
}

}  // namespace
}  // namespace lct::test
