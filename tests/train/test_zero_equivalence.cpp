// ZeRO 2 and 3, with and without each offload, reproduce the single-rank run (zero 0) over 5 AdamW
// steps (losses, gradient norms, final weights within 1e-5) at dp 2, cp 2 x dp 2 and tp 2 x cp 2,
// each with grad_accum 2; every run's memory per category is what --plan's model says for it
// (so the stage and the offload really were in effect); and a checkpoint written at any zero
// level and layout resumes at another.
#include <filesystem>

#include "core/error.h"
#include "deck/config.h"
#include "deck/deck.h"
#include "equivalence.h"
#include "parallel/layout.h"
#include "parallel/planner.h"

namespace lct::test {
namespace {

// The model of these tests: the tiny deck with 4 layers, so ZeRO 3 holds fewer weights than zero 0.
const std::vector<std::string> kModel = {"--model.n_layers=4"};

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every rank's peak bytes per category in metrics.jsonl equal estimate_memory's for the same deck
// (the cpu backend rounds each allocation up to 64 bytes).
void expect_memory_as_planned(const RunResult& got, int np, const std::vector<std::string>& overrides,
                              const std::string& what) {
  ASSERT_FALSE(got.rows.empty()) << what;
  const Deck d = Deck::from_text(tiny_deck("corpus.bin", "out"), "zero-test.deck", overrides);
  const Config c = config_from_deck(resolved_stage(d, 1));
  const Layout L = make_layout(make_topology(np, np), c.parallel.tp, c.parallel.cp, 0, true);
  const MemoryEstimate plan = estimate_memory(c, L, memory_options(c));
  const nlohmann::json& row = got.rows.rbegin()->second;
  for (const char* pool : {"device_peak_bytes", "host_peak_bytes"}) {
    const bool host = std::string(pool) == "host_peak_bytes";
    for (const char* g : {"weights", "gradients", "optimizer", "layer_inputs", "activations", "comm_buffers"}) {
      int64_t want = 0;
      for (const MemoryItem& it : plan.items)
        if (it.group == g && it.host == host) want += it.count * std::max<int64_t>(64, (it.bytes + 63) / 64 * 64);
      ASSERT_TRUE(row.contains(pool) && row[pool].contains(g)) << what << ": metrics.jsonl lacks " << pool << "." << g;
      ASSERT_EQ(row[pool][g].size(), size_t(np)) << what;
      for (int r = 0; r < np; ++r)
        EXPECT_EQ(row[pool][g][size_t(r)].get<int64_t>(), want) << what << ": rank " << r << " " << pool << " " << g;
    }
  }
}

struct Layout3 {
  const char* name;
  int np;
  std::vector<std::string> ov;
};

const Layout3 kLayouts[] = {
    {"dp2", 2, {"--train.grad_accum=2"}},
    {"cp2dp2", 4, {"--parallel.cp=2", "--train.grad_accum=2"}},
    {"tp2cp2", 4, {"--parallel.tp=2", "--parallel.cp=2", "--train.micro_batch=2", "--train.grad_accum=2"}},
};

const std::vector<std::pair<const char*, std::vector<std::string>>> kOffloads = {
    {"none", {}},
    {"optimizer", {"--train.offload=optimizer"}},
    {"activations", {"--train.offload=activations", "--train.recompute=layer"}},
    {"both", {"--train.offload=both", "--train.recompute=layer"}},
};

void run_stage(int zero) {
  const RunResult ref = run_case(str("zero_ref_z", zero), 1, kModel);  // zero 0, one rank, grad_accum 4
  expect_learning(ref);
  expect_memory_as_planned(ref, 1, kModel, "reference");
  for (const Layout3& l : kLayouts)
    for (const auto& [oname, oov] : kOffloads) {
      const std::string name = str("zero", zero, "_", l.name, "_offload_", oname);
      const std::vector<std::string> ov = plus(plus(plus(kModel, l.ov), oov), {str("--parallel.zero=", zero)});
      const RunResult got = run_case(name, l.np, ov);
      expect_same_run(ref, got, name);
      expect_memory_as_planned(got, l.np, ov, name);
      const nlohmann::json& m = got.rows.rbegin()->second;
      const nlohmann::json& r0 = ref.rows.rbegin()->second;
      // What the options change, in the measurement itself.
      if (oname == std::string("optimizer") || oname == std::string("both")) {
        EXPECT_EQ(m["device_peak_bytes"]["optimizer"][0].get<int64_t>(), 0) << name;
        EXPECT_GT(m["host_peak_bytes"]["optimizer"][0].get<int64_t>(), 0) << name;
      }
      if (oname == std::string("activations") || oname == std::string("both"))
        EXPECT_GT(m["host_peak_bytes"]["layer_inputs"][0].get<int64_t>(), 0) << name;
      EXPECT_GT(m["device_peak_bytes"]["comm_buffers"][0].get<int64_t>(), 0) << name << ": no reduce-scatter results";
      EXPECT_EQ(r0["device_peak_bytes"]["comm_buffers"][0].get<int64_t>(), 0) << "reference";
    }
}

TEST(Zero, Stage2EqualsOneRankWithEveryOffload) { run_stage(2); }
TEST(Zero, Stage3EqualsOneRankWithEveryOffload) { run_stage(3); }

// model.init_from an HF directory: each ZeRO-3 rank reads only its shard, and the run equals zero 0.
TEST(Zero, InitFromHfAtStage3EqualsOneRank) {
  const std::vector<std::string> hf = {"--model.init_from=" + data_dir() + "/hf/tiny_gqa2", "--model.vocab_size=96",
                                       "--model.dim=64", "--model.ffn_dim=96"};
  const RunResult ref = run_case("zero_hf_ref", 1, hf);
  expect_same_run(ref, run_case("zero_hf_z3_cp2dp2", 4, plus(hf, {"--parallel.zero=3", "--parallel.cp=2",
                                                                  "--train.grad_accum=2"})),
                  "init_from HF, zero 3, cp 2 x dp 2");
}

// A checkpoint written at one zero level and layout, resumed at another after step 3, ends where
// the uninterrupted zero 0 single-rank run ends.
TEST(Zero, CheckpointsResumeAcrossZeroLevelsAndLayouts) {
  const RunResult ref = run_case("zero_resume_ref", 1, kModel);
  struct Pair {
    const char* name;
    int np_save, np_resume;
    std::vector<std::string> save, resume;
  } pairs[] = {
      {"z3_cp2dp2_both_to_z0_one_rank", 4, 1,
       {"--parallel.zero=3", "--parallel.cp=2", "--train.grad_accum=2", "--train.offload=both", "--train.recompute=layer"},
       {}},
      {"z0_tp2_to_z3_tp2cp2_offload_optimizer", 2, 4, {"--parallel.tp=2"},
       {"--parallel.zero=3", "--parallel.tp=2", "--parallel.cp=2", "--train.micro_batch=2", "--train.grad_accum=2",
        "--train.offload=optimizer"}},
      {"z2_dp2_to_z1_cp2dp2", 2, 4, {"--parallel.zero=2", "--train.grad_accum=2"},
       {"--parallel.zero=1", "--parallel.cp=2", "--train.grad_accum=2"}},
  };
  for (const Pair& p : pairs) {
    const std::string dir = scratch_dir(str("zero_resume_", p.name)), corpus = dir + "/corpus.bin";
    write_markov_corpus(corpus, 64, 20000, 7);
    const std::string deck = tiny_deck(corpus, dir + "/out");
    const CommandResult first =
        run_lctrain(p.np_save, dir, deck, plus(plus(kModel, p.save), {"--checkpoint.resume=none"}),
                    "LCT_DEBUG_STOP_AFTER_STEP=3");
    ASSERT_EQ(first.exit_code, 75) << p.name << "\n" << first.output;
    const CommandResult second = run_lctrain(p.np_resume, dir, deck, plus(kModel, p.resume));
    ASSERT_EQ(second.exit_code, 0) << p.name << "\n" << second.output;
    EXPECT_NE(second.output.find("resuming stage 1 at step 4"), std::string::npos) << p.name << "\n" << second.output;
    RunResult got;
    got.rows = read_metrics(dir + "/out");
    got.losses = losses(got.rows);
    got.weights = read_checkpoint_weights(checkpoint_path(dir + "/out", 5));
    expect_same_run(ref, got, p.name);
  }
}

}  // namespace
}  // namespace lct::test
