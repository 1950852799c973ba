// The lctrain command line: --help, --dry-run, deck errors with exit code 2 on every rank, layout
// errors, a numerical fault's exit code.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "train_harness.h"

namespace lct::test {
namespace {

std::string lctrain() { return bin_dir() + "/lctrain"; }

std::string write_deck(const std::string& dir, const std::string& text) {
  const std::string p = dir + "/x.deck";
  FILE* f = std::fopen(p.c_str(), "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return p;
}

TEST(Cli, HelpListsEveryKeyAndExitCodes) {
  CommandResult r = run_command(lctrain() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("train.steps"), std::string::npos);
  EXPECT_NE(r.output.find("parallel.cp"), std::string::npos);
  EXPECT_NE(r.output.find("75"), std::string::npos);
}

TEST(Cli, DryRunPrintsTheEffectiveDeck) {
  const std::string dir = scratch_dir("cli_dry");
  const std::string deck = write_deck(dir, "[train]\nsteps = 3\nseq_len = 65536\n[rope]\ntheta = auto\n");
  CommandResult r = run_command(lctrain() + " --dry-run " + deck + " --train.lr=0.001");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\ntrain.steps = 3\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\ntrain.lr = 0.001\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nrope.theta = 22443169\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nstage1.train.steps = 3\n"), std::string::npos) << r.output;
  // The printed deck is itself a valid deck that gives the same values.
  const std::string again = write_deck(dir, r.output);
  CommandResult r2 = run_command(lctrain() + " --dry-run " + again);
  EXPECT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_EQ(r2.output, r.output);
}

TEST(Cli, UnknownKeyExitsTwoOnEveryRankWithOneMessage) {
  const std::string dir = scratch_dir("cli_stepz");
  const std::string deck = write_deck(dir, "[train]\nstepz = 3\n");
  CommandResult r = run_command(lctrain() + " --dry-run " + deck);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("train.stepz"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean train.steps?"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("x.deck:2"), std::string::npos) << r.output;
  // Under mpirun: exit code 2, the message printed once.
  r = run_command("mpirun --oversubscribe -np 3 " + lctrain() + " " + deck);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  size_t n = 0;
  for (size_t p = r.output.find("train.stepz"); p != std::string::npos; p = r.output.find("train.stepz", p + 1)) ++n;
  EXPECT_EQ(n, 1u) << r.output;
}

TEST(Cli, BadInputsExitTwo) {
  const std::string dir = scratch_dir("cli_bad");
  EXPECT_EQ(run_command(lctrain() + " --dry-run " + dir + "/missing.deck").exit_code, 2);
  EXPECT_EQ(run_command(lctrain() + " --bogus-flag x.deck").exit_code, 2);
  const std::string deck = write_deck(dir, "train.steps = -1\n");
  CommandResult r = run_command(lctrain() + " --dry-run " + deck);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("integer >= 0"), std::string::npos) << r.output;
}

TEST(Cli, InconsistentLayoutExitsTwo) {
  const std::string dir = scratch_dir("cli_layout");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 5000, 1);
  CommandResult r = run_lctrain(3, dir, tiny_deck(corpus, dir + "/out"), {"--parallel.tp=2"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("does not divide the world size 3"), std::string::npos) << r.output;
  r = run_lctrain(2, dir, tiny_deck(corpus, dir + "/out"), {"--parallel.cp=2", "--train.seq_len=30"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("2 * parallel.cp"), std::string::npos) << r.output;
}

TEST(Cli, NonFiniteLossStopsWithTheNumericalCode) {
  const std::string dir = scratch_dir("cli_nan");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 5000, 1);
  CommandResult r = run_lctrain(2, dir, tiny_deck(corpus, dir + "/out"),
                                {"--train.lr=1e30", "--train.warmup_steps=0", "--train.grad_clip=0", "--optim.name=sgd"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("not finite"), std::string::npos) << r.output;
}

TEST(Cli, MissingDataIsAnInputError) {
  const std::string dir = scratch_dir("cli_nodata");
  CommandResult r = run_lctrain(2, dir, tiny_deck(dir + "/nope-*.bin", dir + "/out"), {});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("nope-*.bin"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lct::test

namespace lct::test {
namespace {

TEST(Data, FourGiBSparseShardTrainsAStepInLittleMemory) {
  // llm.c shard header + 2^31 - 1 uint16 tokens (all id 0), sparse: nothing is read whole.
  const std::string dir = scratch_dir("sparse_shard");
  const std::string path = dir + "/huge.bin";
  const int64_t tokens = 2147483647;
  {
    int32_t header[256] = {0};
    header[0] = 20240520;
    header[1] = 1;
    header[2] = int32_t(tokens);
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(header, sizeof header, 1, f);
    std::fclose(f);
    ASSERT_EQ(truncate(path.c_str(), off_t(sizeof header) + off_t(tokens) * 2), 0);
  }
  CommandResult r = run_lctrain(1, dir, tiny_deck(path, dir + "/out"), {"--train.steps=1", "--checkpoint.every=0"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto rows = read_metrics(dir + "/out");
  ASSERT_EQ(rows.size(), 1u);
  const double peak = rows.begin()->second["peak_rss_bytes"].get<double>();
  std::printf("4 GiB sparse shard: one step, peak RSS %.1f MiB\n", peak / 1048576);
  EXPECT_GT(peak, 8.0 * 1048576) << "peak RSS unreadable or implausible: the bound below would hold vacuously";
  EXPECT_LT(peak, 256.0 * 1048576);
}

TEST(Data, ValidationLossByPosition) {
  const std::string dir = scratch_dir("valid_loss");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 20000, 5);
  CommandResult r = run_lctrain(2, dir, tiny_deck(corpus, dir + "/out"),
                                {"--data.valid=" + corpus, "--data.valid_every=2", "--parallel.cp=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("validation at step 4"), std::string::npos) << r.output;
  std::ifstream f(dir + "/out/metrics.jsonl");
  std::string line;
  int events = 0;
  while (std::getline(f, line))
    if (line.find("\"validation\"") != std::string::npos) {
      auto j = nlohmann::json::parse(line);
      EXPECT_EQ(j["valid_loss_by_position"].size(), 8u);
      EXPECT_GT(j["valid_tokens"].get<int>(), 0);
      ++events;
    }
  EXPECT_EQ(events, 3) << "steps 2, 4 and the stage end (5)";
}

}  // namespace
}  // namespace lct::test

namespace lct::test {
namespace {

TEST(Cli, EveryShippedDeckResolves) {
  // The decks in input/ must stay valid as keys evolve (${SCRATCH} set for the recipe decks).
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(source_dir() + "/input")) {
    if (e.path().extension() != ".deck") continue;
    CommandResult r = run_command("SCRATCH=/tmp " + bin_dir() + "/lctrain --dry-run " + e.path().string());
    EXPECT_EQ(r.exit_code, 0) << e.path() << "\n" << r.output;
    ++n;
  }
  EXPECT_GE(n, 3);
}

}  // namespace
}  // namespace lct::test

namespace lct::test {
namespace {

TEST(Cli, EvalWithATextHaystack) {
  // A byte-level model evaluated on prompts written in words (eval.haystack through data.tokenizer).
  const std::string dir = scratch_dir("eval_text");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 20000, 2);
  const std::string deck = tiny_deck(corpus, dir + "/out");
  ASSERT_EQ(run_lctrain(2, dir, deck, {"--train.steps=1", "--model.vocab_size=258"}).exit_code, 0);
  std::ofstream(dir + "/eval.deck") << deck;
  CommandResult r = run_command("mpirun --oversubscribe -np 2 " + bin_dir() + "/lctrain --eval " + dir + "/eval.deck" +
                  " --train.steps=1 --model.vocab_size=258 --eval.haystack=" + source_dir() + "/README.md --eval.lengths=256,512" +
                  " --eval.depths=0,100 --eval.samples=2 --parallel.cp=2 --data.tokenizer=bytes");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/out/niah.csv"));
  // A tokenizer larger than the model's vocabulary (64 here) is refused.
  ASSERT_EQ(run_lctrain(1, dir, deck, {"--train.steps=1", "--run.out_dir=" + dir + "/out64"}).exit_code, 0);
  r = run_command("mpirun --oversubscribe -np 1 " + bin_dir() + "/lctrain --eval " + dir + "/eval.deck" +
                  " --train.steps=1 --run.out_dir=" + dir + "/out64 --eval.haystack=" + source_dir() +
                  "/README.md --eval.lengths=256 --data.tokenizer=bytes");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("use the tokenizer the model was trained with"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lct::test
