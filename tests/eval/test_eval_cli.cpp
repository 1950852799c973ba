// `lctrain --eval` end to end: lcdata synth -> a 2-step training run -> the evaluation finds the
// stage's final checkpoint, writes niah.csv (and the no-needle control's CSV) in grid order, and
// reports what is missing or wrong with exit code 2. Runs mpirun itself (NOMPI).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace lct {
namespace {
using test::read_file;

std::string mpirun(int np) {
  return "OMP_NUM_THREADS=1 mpirun -np " + std::to_string(np) +
         " --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo"
         " --mca oob_tcp_if_include lo ";
}
std::string lctrain() { return test::bin_dir() + "/lctrain"; }
std::string lcdata() { return test::bin_dir() + "/../tests/lcdata_under_test"; }

int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("eval_cli");
    auto r = test::run_command(lcdata() + " synth --task niah --value-classes --length 64 --docs 64 --out " + dir_ +
                               "/niah64.h5");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    deck_ = dir_ + "/eval.deck";
    std::ofstream(deck_) << "[run]\nout_dir = " << dir_ << "/out\n"
                         << "[model]\nvocab_size = 256\ndim = 32\nn_layers = 1\nn_heads = 2\nffn_dim = 64\n"
                         << "tie_embeddings = true\n"
                         << "[train]\nseq_len = 64\nmicro_batch = 2\nsteps = 2\nlog_every = 1\n"
                         << "[data]\ntrain = " << dir_ << "/niah64.h5\n"
                         << "[eval]\ntasks = niah,kv\nlengths = 128,256\ndepths = 0,50,100\nsamples = 3\n";
  }
  std::string dir_, deck_;
};

TEST_F(EvalCli, TrainThenEvaluateWritesTheGrid) {
  auto r = test::run_command(mpirun(2) + lctrain() + " " + deck_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Evaluate with ring attention over 2 ranks (the eval layout comes from the deck's [parallel]).
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --parallel.cp=2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step_00000002.h5 (" + dir_ + "/out/checkpoints/latest; step 2"), std::string::npos)
      << "the newest checkpoint\n" << r.output;
  EXPECT_NE(r.output.find("cp=2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("depth \\ length      128      256"), std::string::npos) << r.output;
  for (const char* task : {"niah", "kv"}) {
    const std::string csv = read_file(dir_ + "/out/" + task + ".csv");
    ASSERT_EQ(count_lines(csv), 1 + 2 * 3) << task << ":\n" << csv;
    std::istringstream in(csv);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "length,depth,samples,accuracy,token_accuracy,answer_nll");
    int row = 0;
    while (std::getline(in, line)) {
      const int L = row < 3 ? 128 : 256, d = (row % 3) * 50;
      EXPECT_EQ(line.rfind(std::to_string(L) + "," + std::to_string(d) + ",3,", 0), 0u) << line;
      ++row;
    }
  }
  // The control writes its own file and is at chance: no exact match.
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --eval.tasks=niah --eval.no_needle=true");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string control = read_file(dir_ + "/out/niah_no_needle.csv");
  EXPECT_EQ(count_lines(control), 7) << control;
  EXPECT_EQ(control.find(",1.000000,"), std::string::npos) << control;
}

// RULER tasks by generation (bytes tokenizer: the model needs its 258 ids): the cells' CSV and a
// JSON line per prompt, gathered from both dp replicas, whose scores average to the CSV's cells.
TEST_F(EvalCli, RulerTasksWriteTheCellsAndEveryPrompt) {
  const std::string bytes = " --model.vocab_size=258 --data.tokenizer=bytes --run.out_dir=" + dir_ + "/ruler";
  auto r = test::run_command(mpirun(2) + lctrain() + " " + deck_ + bytes + " --train.steps=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + bytes +
                        " --eval.tasks=vt,fwe --eval.lengths=1024 --eval.depths=0,100 --eval.samples=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("every prompt's text in " + dir_ + "/ruler/ruler_vt.jsonl"), std::string::npos) << r.output;
  for (const std::string task : {"vt", "fwe"}) {
    SCOPED_TRACE(task);
    const std::string csv = read_file(dir_ + "/ruler/ruler_" + task + ".csv");
    std::istringstream lines(read_file(dir_ + "/ruler/ruler_" + task + ".jsonl"));
    std::vector<nlohmann::json> preds;
    for (std::string line; std::getline(lines, line);) preds.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(preds.size(), 2u) << "1 length x 2 depths x 1 sample (fwe: 2 samples, no depth)";
    std::map<int64_t, std::pair<double, int>> cell;  // depth -> score sum, prompts
    for (size_t i = 0; i < preds.size(); ++i) {
      const nlohmann::json& p = preds[i];
      EXPECT_EQ(p.at("index").get<int64_t>(), int64_t(i));
      EXPECT_EQ(p.at("length").get<int64_t>(), 1024);
      const int64_t depth = p.at("depth").get<int64_t>();
      EXPECT_EQ(depth, task == "vt" ? int64_t(i) * 100 : -1);
      EXPECT_TRUE(p.at("pred").is_string());
      EXPECT_EQ(p.at("outputs").size(), task == "vt" ? 5u : 3u);
      ASSERT_EQ(p.at("hits").size(), p.at("outputs").size());
      double hits = 0;
      for (const auto& h : p.at("hits")) hits += h.get<int>();
      const double score = p.at("score").get<double>();
      EXPECT_DOUBLE_EQ(score, hits / double(p.at("hits").size()));
      cell[depth].first += score;
      cell[depth].second += 1;
    }
    for (const auto& [depth, sc] : cell) {
      char row[96];
      std::snprintf(row, sizeof row, "\n1024,%lld,%d,%.6f\n", (long long)depth, sc.second, sc.first / sc.second);
      EXPECT_NE(csv.find(row), std::string::npos) << row << " in\n" << csv;
    }
  }
}

// Errors of the RULER tasks end the job on every rank: a prompt that cannot be made where one dp
// replica has no prompt at all (it waited in the score sum: a hang), an empty task list, a haystack
// that is empty or a directory (each fell back silently to the built-in essay or did nothing).
TEST_F(EvalCli, RulerInputErrorsExit2OnEveryRank) {
  const std::string bytes = " --model.vocab_size=258 --data.tokenizer=bytes --run.out_dir=" + dir_ + "/ruler_err";
  auto r = test::run_command(mpirun(2) + lctrain() + " " + deck_ + bytes + " --train.steps=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ofstream(dir_ + "/blank.txt") << " \n\t\n";
  struct Case {
    std::string args, needle;
  };
  for (const Case& c : {Case{" --parallel.dp=2 --eval.tasks=niah_single_1 --eval.lengths=16 --eval.depths=0 --eval.samples=1",
                             "is too short for its template"},
                        Case{" --eval.tasks=", "eval.tasks, eval.lengths and eval.depths must each list"},
                        Case{" --eval.tasks=niah_single_2 --eval.lengths=512 --eval.haystack=" + dir_ + "/blank.txt",
                             "eval.haystack: '" + dir_ + "/blank.txt' is empty"},
                        Case{" --eval.tasks=niah_single_2 --eval.lengths=512 --eval.haystack=" + dir_, "is a directory"}}) {
    r = test::run_command("timeout 120 env " + mpirun(2) + lctrain() + " --eval " + deck_ + bytes + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << c.args << "\n" << r.output;
  }
  // A teacher-forced task's length that the cp ring cannot cut is found before the RULER tasks run
  // (it was found after them, their generation wasted).
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + bytes +
                        " --parallel.cp=2 --eval.tasks=vt,niah --eval.lengths=1026 --eval.depths=0 --eval.samples=1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("eval.lengths: 1026 is not divisible by 4"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("eval vt"), std::string::npos) << "vt ran first:\n" << r.output;
}

TEST_F(EvalCli, DefaultsToTheLatestCheckpoint) {
  // Trained for 1 of the deck's 2 steps (e.g. with an override): --eval takes checkpoints/latest,
  // not the deck's last step.
  auto r = test::run_command(mpirun(2) + lctrain() + " " + deck_ + " --train.steps=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --eval.tasks=niah");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("eval: " + dir_ + "/out/checkpoints/step_00000001.h5 (" + dir_ + "/out/checkpoints/latest; step 1"),
            std::string::npos)
      << r.output;
  // --stage N still means that stage's final checkpoint, and says how to name another one.
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --stage 1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("the stage's final checkpoint " + dir_ + "/out/checkpoints/step_00000002.h5 does not exist"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--checkpoint PATH"), std::string::npos) << r.output;
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --eval.tasks=niah --checkpoint " + dir_ +
                        "/out/checkpoints/step_00000001.h5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(EvalCli, ErrorsSayWhatIsMissingAndExitWith2) {
  // Nothing trained in this out_dir yet: the message names what was looked for and the keys.
  auto r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --run.out_dir=" + dir_ + "/empty");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no model to evaluate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(dir_ + "/empty/checkpoints/latest does not exist"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--checkpoint PATH"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model.init_from"), std::string::npos) << r.output;
  r = test::run_command(mpirun(2) + lctrain() + " " + deck_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --eval.tasks=ruler");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown task 'ruler'"), std::string::npos) << r.output;
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --parallel.cp=2 --eval.lengths=64,90");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("eval.lengths: 90 is not divisible by 4"), std::string::npos) << r.output;
  r = test::run_command(mpirun(2) + lctrain() + " --eval " + deck_ + " --eval.lengths=16");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("eval.lengths: 16: synth: documents of 16 tokens are too short"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("; raise that entry of eval.lengths"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lct
