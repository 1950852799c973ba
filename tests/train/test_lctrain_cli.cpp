// The lctrain command line: --help, --dry-run, deck errors with exit code 2 on every rank, layout
// errors, a numerical fault's exit code.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

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
  write_markov_corpus(dir + "/c.bin", 64, 5000, 1);
  const std::string deck =
      write_deck(dir, "[train]\nsteps = 3\nseq_len = 65536\n[rope]\ntheta = auto\n[data]\ntrain = " + dir + "/c.bin\n");
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

// Options the chosen mode does not read, two modes, numbers that would wrap around in int and a
// directory in place of the deck: each an input error before anything runs.
TEST(Cli, MisplacedOptionsAndOverflowingNumbersExitTwo) {
  const std::string dir = scratch_dir("cli_args");
  const std::string deck = write_deck(dir, "train.steps = 1\n");
  struct Case {
    std::string args, needle;
  };
  for (const Case& c : {Case{deck + " --checkpoint " + dir + "/ck.h5", "checkpoint.resume"},
                        Case{"--dry-run --plan " + deck, "two modes"},
                        Case{deck + " --prompt hi", "it belongs to --generate"},
                        Case{"--eval " + deck + " --max-new 3", "--max-new is not read by --eval"},
                        Case{deck + " --world-size 4", "--dry-run and --plan"},
                        Case{"--dry-run " + deck + " --world-size 4294967298", "positive integer up to"},
                        Case{"--generate " + deck + " --prompt x --max-new 3000000000", "positive integer up to"},
                        Case{"--dry-run " + dir, "is a directory"},
                        Case{"--dry-run " + deck + " --ranks-per-node 2", "--ranks-per-node is read with --world-size"}}) {
    CommandResult r = run_command(lctrain() + " " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << c.args << "\n" << r.output;
  }
  // jobs/eval.sbatch's DRY_RUN=1 passes the eval job's --checkpoint to --dry-run, which checks it.
  std::ofstream(dir + "/ck.h5") << "x";
  write_markov_corpus(dir + "/c.bin", 64, 5000, 1);
  const std::string valid = write_deck(dir, tiny_deck(dir + "/c.bin", dir + "/out"));
  CommandResult ok = run_command(lctrain() + " --dry-run " + valid + " --checkpoint " + dir + "/ck.h5");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  CommandResult none = run_command(lctrain() + " --dry-run " + valid + " --checkpoint " + dir + "/none.h5");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("--checkpoint " + dir + "/none.h5: no such file"), std::string::npos) << none.output;
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

// A validation file too small for one sample is reported under its own key, not as data.train.
TEST(Cli, TooLittleValidationDataNamesDataValid) {
  const std::string dir = scratch_dir("cli_valid");
  write_markov_corpus(dir + "/c.bin", 64, 5000, 1);
  write_markov_corpus(dir + "/v.bin", 64, 10, 2);
  CommandResult r = run_lctrain(1, dir, tiny_deck(dir + "/c.bin", dir + "/out"), {"--data.valid=" + dir + "/v.bin"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("[data] valid: the data holds"), std::string::npos) << r.output;
}

// A bad token that only dp rank 1 reads: every rank exits 2, and the message (printed by rank 0)
// says which rank found it.
TEST(Cli, AnErrorFoundOnOneRankNamesThatRank) {
  const std::string dir = scratch_dir("cli_rank_label");
  write_markov_corpus(dir + "/c.bin", 64, 5000, 1);
  {
    std::fstream f(dir + "/c.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1024 + 2 * 40);  // token 40: in sample 1 (tokens 32..64), dp rank 1's at step 1
    const uint16_t bad = 100;
    f.write(reinterpret_cast<const char*>(&bad), 2);
  }
  CommandResult r = run_lctrain(2, dir, tiny_deck(dir + "/c.bin", dir + "/out"),
                                {"--train.grad_accum=1", "--data.shuffle=false", "--data.prefetch=0"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("100"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(found on rank 1)"), std::string::npos) << r.output;
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
  // The decks in input/ must stay valid as keys evolve. --dry-run checks data files and start
  // paths too, so run it where they exist: a scratch folder with input/ (the HF configs that
  // model.init_from names), the demo's per-stage data, and data.train given for the rest.
  const std::string dir = scratch_dir("cli_shipped");
  std::filesystem::create_symlink(source_dir() + "/input", dir + "/input");
  write_markov_corpus(dir + "/corpus.bin", 64, 2000, 1);
  // Each deck's data files under out/ (make run and tools/measure_ruler*.sh make them) as small
  // corpora; a checkpoint path under out/ is another run's and is left out (below).
  const std::regex out_file(R"(out/[A-Za-z0-9_./-]+\.h5)");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(source_dir() + "/input")) {
    if (e.path().extension() != ".deck") continue;
    std::ifstream in(e.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator m(text.begin(), text.end(), out_file), none; m != none; ++m) {
      const std::string path = dir + "/" + m->str();
      if (m->str().find("/checkpoints/") != std::string::npos || std::filesystem::exists(path)) continue;
      std::filesystem::create_directories(std::filesystem::path(path).parent_path());
      write_markov_corpus(path, 64, 2000, 1);
    }
    // A deck that starts from another run's checkpoint under out/ (made by its script) is checked
    // with random weights; every other model.init_from must exist as shipped.
    const bool from_run = text.find("init_from = out/") != std::string::npos;
    CommandResult r = run_command("cd " + dir + " && SCRATCH=" + dir + " " + bin_dir() + "/lctrain --dry-run input/" +
                                  e.path().filename().string() + " --data.train=corpus.bin" +
                                  (from_run ? " --model.init_from=" : ""));
    EXPECT_EQ(r.exit_code, 0) << e.path() << "\n" << r.output;
    ++n;
  }
  EXPECT_GE(n, 3);
}

// The error line of an lctrain run, without its "lctrain error[ [rank 0]]: " prefix.
std::string error_message(const std::string& output) {
  const size_t p = output.find("lctrain error");
  if (p == std::string::npos) return "";
  const size_t colon = output.find(": ", p);
  const size_t end = output.find('\n', colon);
  return output.substr(colon + 2, end == std::string::npos ? std::string::npos : end - colon - 2);
}

TEST(Cli, DryRunRejectsWhatTrainingRejectsWithTheSameMessage) {
  const std::string dir = scratch_dir("cli_dry_layout");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 5000, 1);
  const std::string deck_text = tiny_deck(corpus, dir + "/out");
  const std::string deck = write_deck(dir, deck_text);
  struct Case {
    std::vector<std::string> overrides;
    int np;               // ranks of the training run
    std::string world;    // extra --dry-run arguments
    std::string expect;   // a piece of the message
  } cases[] = {
      {{"--parallel.cp=2", "--train.seq_len=30"}, 2, "", "must be divisible by 4 (2 * parallel.cp"},
      {{"--parallel.tp=3"}, 3, "", "parallel.tp = 3 must divide model.n_heads = 4"},
      {{"--parallel.tp=2", "--parallel.sequence_parallel=true", "--train.seq_len=33"}, 2, "", "divisible by parallel.tp = 2"},
      {{"--parallel.tp=2"}, 3, "--world-size 3", "does not divide the world size 3"},
      {{"--parallel.tp=2", "--parallel.ranks_per_node=1"}, 2, "--world-size 2", "parallel.tp = 2 does not divide the ranks per node (1)"},
      {{"--data.train=" + dir + "/nope-*.bin"}, 2, "", "the pattern '" + dir + "/nope-*.bin' matches no files"},
      {{"--data.valid=" + dir + "/valid.bin"}, 2, "", "[data] valid: " + dir + "/valid.bin: no such file"},
      {{"--model.init_from=" + dir + "/none.h5"}, 2, "", "model.init_from = " + dir + "/none.h5 (command line): no such file"},
      {{"--checkpoint.resume=" + dir + "/none.h5"}, 2, "", "checkpoint.resume = " + dir + "/none.h5 (command line): no such"},
  };
  for (const Case& c : cases) {
    std::string ov;
    for (const auto& o : c.overrides) ov += " '" + o + "'";
    CommandResult dry = run_command(lctrain() + " --dry-run " + deck + ov + " " + c.world);
    EXPECT_EQ(dry.exit_code, 2) << ov << "\n" << dry.output;
    EXPECT_NE(dry.output.find(c.expect), std::string::npos) << ov << "\n" << dry.output;
    CommandResult train = run_lctrain(c.np, dir, deck_text, c.overrides);
    EXPECT_EQ(train.exit_code, 2) << ov << "\n" << train.output;
    EXPECT_EQ(error_message(dry.output), error_message(train.output)) << ov << "\n" << dry.output << "\n" << train.output;
    EXPECT_FALSE(std::filesystem::exists(dir + "/out/effective.deck")) << ov << ": nothing written before the checks";
  }
  // --ranks-per-node must divide --world-size (as for --plan), and when the deck's
  // parallel.ranks_per_node wins (as in training) the summary says so.
  CommandResult rpn = run_command(lctrain() + " --dry-run " + deck + " --world-size 4 --ranks-per-node 3");
  EXPECT_EQ(rpn.exit_code, 2) << rpn.output;
  EXPECT_NE(rpn.output.find("--ranks-per-node 3 does not divide --world-size 4"), std::string::npos) << rpn.output;
  rpn = run_command(lctrain() + " --dry-run " + deck + " --world-size 4 --ranks-per-node 2 --parallel.ranks_per_node=4");
  EXPECT_EQ(rpn.exit_code, 0) << rpn.output;
  EXPECT_NE(rpn.output.find("on nodes of 4 ranks (the deck's parallel.ranks_per_node, over the 2 of --ranks-per-node)"),
            std::string::npos)
      << rpn.output;
  // Without --world-size the rules that depend on it are not checked, and the output says so.
  CommandResult r = run_command(lctrain() + " --dry-run " + deck + " --parallel.tp=2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("give --world-size N"), std::string::npos) << r.output;
}

TEST(Cli, DryRunReportsPathsAnEarlierStageWrites) {
  const std::string dir = scratch_dir("cli_dry_stages");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 5000, 1);
  const std::string out = dir + "/out";
  const std::string deck = write_deck(dir, tiny_deck(corpus, out) + "[stage1]\ntrain.steps = 3\n[stage2]\ntrain.steps = 2\n");
  // --stage 2 resuming from stage 1's final checkpoint (step 3), which does not exist yet.
  CommandResult r = run_command(lctrain() + " --dry-run " + deck + " --stage 2 --checkpoint.resume=" + out +
                                "/checkpoints/step_00000003.h5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("# note: stage 2 checkpoint.resume = " + out +
                          "/checkpoints/step_00000003.h5 does not exist yet: stage 1 of this deck writes it"),
            std::string::npos)
      << r.output;
  // A step no stage writes is an error.
  r = run_command(lctrain() + " --dry-run " + deck + " --stage 2 --checkpoint.resume=" + out +
                  "/checkpoints/step_00000002.h5");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, DefaultThreadsFollowTheAffinityMaskAndOversubscriptionIsReported) {
  const std::string dir = scratch_dir("cli_threads");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 5000, 1);
  const std::string deck = tiny_deck(corpus, dir + "/out");
  const std::vector<std::string> one = {"--train.steps=1", "--checkpoint.resume=none"};
  // Two ranks sharing one CPU (taskset, no binding): one thread each, and the warning with the fix.
  CommandResult r = run_lctrain(2, dir, deck, one, "env -u OMP_NUM_THREADS taskset -c 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("threads: 1 OpenMP thread(s) per rank (1 CPU(s) in its affinity mask, shared by 2 rank(s)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("oversubscribed: 2 rank(s) run 2 OpenMP threads in all on the 1 CPU(s)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Fix: start at most 1 rank(s) on this node"), std::string::npos) << r.output;
  size_t n = 0;
  for (size_t p = r.output.find("oversubscribed"); p != std::string::npos; p = r.output.find("oversubscribed", p + 1)) ++n;
  EXPECT_EQ(n, 1u) << "reported once\n" << r.output;
  // One rank on two CPUs: two threads, no warning.
  r = run_lctrain(1, dir, deck, one, "env -u OMP_NUM_THREADS taskset -c 0,1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("threads: 2 OpenMP thread(s) per rank (2 CPU(s) in its affinity mask, shared by 1 rank(s)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("oversubscribed"), std::string::npos) << r.output;
  // An explicit OMP_NUM_THREADS wins; too many is reported with the matching fix.
  r = run_lctrain(2, dir, deck, one, "OMP_NUM_THREADS=2 taskset -c 0,1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("threads: 2 OpenMP thread(s) per rank (OMP_NUM_THREADS=2)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Fix: unset OMP_NUM_THREADS"), std::string::npos) << r.output;
}

TEST(Cli, ValidationSamplesRoundingAndRepetitionAreLogged) {
  const std::string dir = scratch_dir("cli_valid_samples");
  const std::string corpus = dir + "/c.bin", valid = dir + "/v.bin";
  write_markov_corpus(corpus, 64, 5000, 1);
  write_markov_corpus(valid, 64, 100, 2);  // 3 samples of 32 + 1 tokens
  CommandResult r = run_lctrain(2, dir, tiny_deck(corpus, dir + "/out"),
                                {"--train.steps=1", "--data.valid=" + valid, "--data.valid_samples=5", "--train.grad_accum=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("validation: 6 samples of 32 tokens per evaluation (data.valid_samples = 5 rounded up to a "
                          "multiple of micro_batch x dp = 2); data.valid holds only 3 such samples, so 3 of them are "
                          "repeats"),
            std::string::npos)
      << r.output;
}

TEST(Cli, CheckpointSizesAreLoggedAsDataAndFileBytes) {
  const std::string dir = scratch_dir("cli_ckpt_size");
  const std::string corpus = dir + "/c.bin";
  write_markov_corpus(corpus, 64, 5000, 1);
  CommandResult r = run_lctrain(2, dir, tiny_deck(corpus, dir + "/out"), {"--train.steps=1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string path = checkpoint_path(dir + "/out", 1);
  const double file_mb = double(std::filesystem::file_size(path)) / 1e6;
  char want[64];
  std::snprintf(want, sizeof want, " MB, file %g MB (", std::round(file_mb * 10) / 10);
  EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  EXPECT_NE(r.output.find(" ranks); data "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checkpoint.alignment = 1048576 leaves gaps between tensors"), std::string::npos) << r.output;
  std::ifstream f(dir + "/out/metrics.jsonl");
  std::string line;
  int events = 0;
  while (std::getline(f, line))
    if (line.find("\"event\": \"checkpoint\"") != std::string::npos) {
      auto j = nlohmann::json::parse(line);
      EXPECT_EQ(j["file_bytes"].get<int64_t>(), int64_t(std::filesystem::file_size(path)));
      EXPECT_GT(j["file_bytes"].get<int64_t>(), j["bytes"].get<int64_t>());
      EXPECT_GT(j["disk_bytes"].get<int64_t>(), 0);
      ++events;
    }
  EXPECT_EQ(events, 1);
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
