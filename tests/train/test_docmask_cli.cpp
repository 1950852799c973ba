// Packed documents through lctrain (issue 18): the deck keys reach the trainer (cp = 2, 4 with
// sequence zigzag reproduce cp = 1 with reset_attention_mask, reset_position_ids and
// eod_mask_loss; cp_sharding = auto resolves to doc_zigzag; skipped ring hops are counted in
// metrics.jsonl) and the bad inputs end with exit 2 and one message naming the keys.
#include <fstream>
#include <sstream>

#include "equivalence.h"

namespace lct::test {
namespace {

const std::vector<std::string> kDocs = {"--data.eod_token=5", "--data.reset_attention_mask=true",
                                        "--data.reset_position_ids=true", "--data.eod_mask_loss=true",
                                        "--train.seq_len=64"};

std::vector<std::string> with(std::vector<std::string> v, const std::vector<std::string>& more) {
  v.insert(v.end(), more.begin(), more.end());
  return v;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(DocmaskCli, CpReproducesOneRankWithDocumentMasks) {
  const RunResult ref = run_case("dm_ref", 1, with(kDocs, {"--parallel.cp_sharding=zigzag"}));
  expect_same_run(ref, run_case("dm_cp2", 2, with(kDocs, {"--parallel.cp=2", "--parallel.cp_sharding=zigzag"})), "cp2");
  const RunResult cp4 = run_case("dm_cp4", 4, with(kDocs, {"--parallel.cp=4", "--parallel.cp_sharding=zigzag"}));
  expect_same_run(ref, cp4, "cp4");
  // Short documents in 8-token chunks: some K/V blocks are seen by no query of a rank.
  int64_t skipped = 0;
  for (const auto& [step, row] : cp4.rows)
    for (int64_t x : row.at("ring_hops_skipped").get<std::vector<int64_t>>()) skipped += x;
  EXPECT_GT(skipped, 0) << "ring_hops_skipped in metrics.jsonl";
  // Without the mask the same data trains differently.
  const RunResult plain = run_case("dm_plain", 1, {"--data.eod_token=5", "--train.seq_len=64"});
  EXPECT_GT(std::abs(plain.losses[0] - ref.losses[0]) / ref.losses[0], 1e-4);
}

TEST(DocmaskCli, AutoShardingIsDocZigzagWithTheMask) {
  const std::string dir = scratch_dir("dm_auto");
  write_markov_corpus(dir + "/corpus.bin", 64, 20000, 7);
  CommandResult r = run_lctrain(2, dir, tiny_deck(dir + "/corpus.bin", dir + "/out"),
                                with(kDocs, {"--parallel.cp=2", "--train.steps=2", "--checkpoint.resume=none"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string eff = read_file(dir + "/out/effective.deck");
  EXPECT_NE(eff.find("cp_sharding = doc_zigzag"), std::string::npos) << eff;
  const auto rows = read_metrics(dir + "/out");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(std::isfinite(rows.at(2)["loss"].get<double>()));
}

void expect_input_error(const std::string& name, const std::vector<std::string>& ov, const std::string& says) {
  const std::string dir = scratch_dir(name);
  write_markov_corpus(dir + "/corpus.bin", 64, 20000, 7);
  CommandResult r = run_lctrain(2, dir, tiny_deck(dir + "/corpus.bin", dir + "/out"),
                                with(ov, {"--checkpoint.resume=none"}));
  EXPECT_EQ(r.exit_code, 2) << name << ":\n" << r.output;
  EXPECT_NE(r.output.find(says), std::string::npos) << name << ":\n" << r.output;
}

TEST(DocmaskCli, BadInputsExitTwo) {
  // The llm.c corpus names no end-of-document token.
  expect_input_error("dm_err_token", {"--data.reset_attention_mask=true"}, "data.bos_token");
  expect_input_error("dm_err_token2", {"--data.eod_mask_loss=true"}, "data.eod_token");
  expect_input_error("dm_err_shard", {"--data.eod_token=5", "--parallel.cp_sharding=doc_zigzag"},
                     "needs data.reset_attention_mask = true");
  expect_input_error("dm_err_cudnn", {"--data.eod_token=5", "--data.reset_attention_mask=true", "--model.attention_impl=cudnn"},
                     "model.attention_impl = own");
}

// A blend in a deck, and a second stage that changes it (its log names the new blend).
TEST(DocmaskCli, AStageChangesTheBlend) {
  const std::string dir = scratch_dir("dm_blend");
  write_markov_corpus(dir + "/a.bin", 64, 20000, 7);
  write_markov_corpus(dir + "/b.bin", 64, 20000, 8);
  std::string deck = tiny_deck(dir + "/a.bin", dir + "/out");
  deck += "[stage1]\ndata.train = 0.7 " + dir + "/a.bin, 0.3 " + dir + "/b.bin\ntrain.steps = 2\n"
          "[stage2]\ndata.train = 0.2 " + dir + "/a.bin, 0.8 " + dir + "/b.bin\ntrain.steps = 2\n";
  CommandResult r = run_lctrain(2, dir, deck, {"--checkpoint.resume=none"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("blend 0.7 x 1 file(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("blend 0.2 x 1 file(s)"), std::string::npos) << r.output;
  EXPECT_EQ(read_metrics(dir + "/out").size(), 4u);
  expect_input_error("dm_err_blend", {"--data.train=0.7x " + dir + "/a.bin, 0.3 " + dir + "/b.bin"},
                     "is not a positive number");
}

}  // namespace
}  // namespace lct::test
