// Checkpoints: exact resume (bit for bit) with ZeRO-1, accumulation and a stop inside the LR
// warmup; resume on other layouts (resharding); a writer killed half-way leaves the previous
// checkpoint in use; truncated and corrupt files give the documented error; each rank writes
// only its own share, and together the ranks write every element of every dataset exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "io/h5file.h"
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

// The second run of a stop-at-5 / resume pair really resumed: it says so, from the step-5 file, it
// skipped no checkpoint as unreadable, and metrics.jsonl holds each of the 10 steps once (a run that
// started over would append steps 1-10 again; a fresh run in another layout matches the reference too,
// so equal losses alone do not show a resume).
void expect_resumed_at_6(const CommandResult& r, const std::string& out, const std::string& what) {
  const std::string want = "resuming stage 1 at step 6 from " + checkpoint_path(out, 5);
  EXPECT_NE(r.output.find(want), std::string::npos) << what << ": no '" << want << "' in:\n" << r.output;
  EXPECT_EQ(r.output.find("skipping checkpoint"), std::string::npos) << what << ":\n" << r.output;
  std::ifstream f(out + "/metrics.jsonl");
  std::string line;
  std::map<int64_t, int> rows;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("loss") && j.contains("step")) ++rows[j["step"].get<int64_t>()];
  }
  EXPECT_EQ(rows.size(), 10u) << what;
  for (const auto& kv : rows) EXPECT_EQ(kv.second, 1) << what << ": step " << kv.first << " logged " << kv.second << " times";
}

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
    expect_resumed_at_6(r, b.out, c.name);
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
  expect_resumed_at_6(r, b.out, "tp1 -> tp2");
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
  // A training state no run reaches (it resumed: a negative cursor read data from before the start).
  const std::string state = b.dir + "/state.h5";
  fs::copy_file(good, state);
  {
    H5File f(state, H5File::ReadWrite);
    f.set_attr("/train", "data_cursor", int64_t(-7));
  }
  r = run_lctrain(2, b.dir, b.deck, {"--train.steps=6", "--checkpoint.resume=" + state});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("state.h5: /train attribute data_cursor = -7 is negative"), std::string::npos) << r.output;
  // resume = auto skips a truncated newest file and uses the previous valid one.
  fs::resize_file(newest, fs::file_size(newest) / 3);
  r = run_lctrain(2, b.dir, b.deck, {"--train.steps=6"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipping checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming stage 1 at step 3"), std::string::npos) << r.output;
}

// Who wrote which bytes of a checkpoint, from the hyperslabs each rank selected for writing
// (LCT_DEBUG_CKPT_WRITES, src/ckpt/checkpoint.cpp): per dataset the ranks' element ranges are
// disjoint and cover it exactly, and tp-replicated tensors (the norm weights) come from tp rank 0
// alone. Returns the element count each rank wrote.
std::vector<int64_t> expect_owned_once(const std::string& writes_dir, int64_t step, int ranks, const std::string& ckpt,
                                       const std::string& what) {
  struct Piece {
    int64_t begin, end;
    int rank, tp_rank;
  };
  std::map<std::string, std::vector<Piece>> by_ds;
  std::map<std::string, std::vector<int64_t>> dims;
  H5File f(ckpt, H5File::Read);
  for (const std::string g : {"/model", "/optim/exp_avg", "/optim/exp_avg_sq"})
    for (const auto& name : f.list(g)) dims[g + "/" + name] = f.shape(g + "/" + name);
  std::vector<int64_t> written(size_t(ranks), 0);
  for (int r = 0; r < ranks; ++r) {
    std::ifstream in(writes_dir + "/step_" + std::to_string(step) + "_rank" + std::to_string(r) + ".jsonl");
    EXPECT_TRUE(in.good()) << what << ": rank " << r << " recorded no writes for step " << step;
    std::string line;
    size_t lines = 0;
    while (std::getline(in, line)) {
      ++lines;
      const auto j = nlohmann::json::parse(line);
      const std::string ds = j["dataset"];
      const auto it = dims.find(ds);
      if (it == dims.end()) {
        ADD_FAILURE() << what << ": rank " << r << " wrote " << ds << ", which the file does not hold";
        continue;
      }
      const std::vector<int64_t>& d = it->second;
      const int64_t cols = d.size() == 2 ? d[1] : 1;
      for (const auto& b : j["blocks"]) {
        const std::vector<int64_t> v = b.get<std::vector<int64_t>>();
        EXPECT_EQ(v.size(), 2 * d.size()) << what << " " << ds;
        if (v.size() != 2 * d.size()) continue;
        const int64_t r0 = v[0], r1 = v[d.size()];  // first and last row (or element)
        const int64_t c0 = d.size() == 2 ? v[1] : 0, c1 = d.size() == 2 ? v[3] : 0;
        for (int64_t row = r0; row <= r1; ++row) {
          by_ds[ds].push_back({row * cols + c0, row * cols + c1 + 1, r, j["tp_rank"].get<int>()});
          written[size_t(r)] += c1 - c0 + 1;
        }
      }
    }
    EXPECT_EQ(lines, dims.size()) << what << ": rank " << r << " (every rank takes part in every dataset)";
  }
  for (const auto& [ds, d] : dims) {
    int64_t numel = 1;
    for (int64_t x : d) numel *= x;
    auto pieces = by_ds[ds];
    std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) { return a.begin < b.begin; });
    int64_t at = 0;
    for (const Piece& p : pieces) {
      EXPECT_EQ(p.begin, at) << what << " " << ds << ": " << (p.begin < at ? "written twice" : "not written")
                             << " between elements " << std::min(p.begin, at) << " and " << std::max(p.begin, at)
                             << " (rank " << p.rank << ")";
      at = std::max(at, p.end);
      // The norm weights are the tensors every tp rank holds whole.
      if (ds.find("norm") != std::string::npos)
        EXPECT_EQ(p.tp_rank, 0) << what << " " << ds << ": replicated tensor written by rank " << p.rank;
    }
    EXPECT_EQ(at, numel) << what << " " << ds << ": covered up to element " << at << " of " << numel;
  }
  return written;
}

TEST(CheckpointResume, EachRankWritesOnlyItsShare) {
  struct Case {
    const char* name;
    int np;
    std::vector<std::string> layout;
  } cases[] = {{"share_zero1_dp4", 4, {"--parallel.zero=1", "--train.grad_accum=1"}},
               {"share_tp2", 2, {"--parallel.tp=2"}},
               {"share_tp2_dp2_zero1", 4, {"--parallel.tp=2", "--parallel.zero=1", "--train.grad_accum=2"}},
               {"share_tp2_cp2", 4, {"--parallel.tp=2", "--parallel.cp=2"}}};
  for (const Case& c : cases) {
    Dir d(c.name);
    const std::string writes = d.dir + "/writes";
    CommandResult r = run_lctrain(c.np, d.dir, d.deck, c.layout, "LCT_DEBUG_CKPT_WRITES=" + writes);
    ASSERT_EQ(r.exit_code, 0) << c.name << "\n" << r.output;
    const std::vector<int64_t> elems = expect_owned_once(writes, 5, c.np, checkpoint_path(d.out, 5), c.name);
    // The bytes each rank reports (metrics.jsonl checkpoint event) are the ones it selected.
    std::ifstream f(d.out + "/metrics.jsonl");
    std::string line;
    nlohmann::json ev;
    while (std::getline(f, line))
      if (line.find("\"checkpoint\"") != std::string::npos) ev = nlohmann::json::parse(line);
    ASSERT_FALSE(ev.is_null()) << c.name;
    ASSERT_EQ(ev["bytes_per_rank"].size(), size_t(c.np)) << c.name;
    for (int k = 0; k < c.np; ++k) EXPECT_EQ(ev["bytes_per_rank"][k].get<int64_t>(), 4 * elems[size_t(k)]) << c.name;
    // ZeRO-1 over 4 ranks: each rank a quarter of its flat buffer (which holds the vocabulary
    // padding, not stored in the file) of weights + 2 moments (a tensor edge or two more).
    if (std::string(c.name) == "share_zero1_dp4")
      for (int64_t e : elems) EXPECT_LE(4 * e, 3 * (ev["flat_param_bytes"].get<int64_t>() / 4 + 64)) << ev.dump();
    // tp = 2: each rank its tp slice, half the bytes; the norm weights (~0.7% here) on tp rank 0.
    if (std::string(c.name) == "share_tp2")
      for (int64_t e : elems) EXPECT_LE(4 * e, ev["bytes"].get<int64_t>() / 2 + ev["bytes"].get<int64_t>() / 100);
  }
}

}  // namespace
}  // namespace lct::test
