// `lctrain --generate` end to end (runs mpirun itself): an HF fixture generates HF's greedy ids
// (tests/data/hf/tiny_gqa2/generation.h5) at cp 2 and tp 2 x cp 2, prints them as one comma-separated
// line on stdout; text prompts go through data.tokenizer; bad input exits 2 with one clear message.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/h5file.h"
#include "test_util.h"

namespace lct {
namespace {

std::string mpirun(int np) {
  return "OMP_NUM_THREADS=1 mpirun -np " + std::to_string(np) +
         " --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo"
         " --mca oob_tcp_if_include lo ";
}
std::string lctrain() { return test::bin_dir() + "/lctrain"; }

// stdout's last line (lctrain's info lines, e.g. the thread count, come first).
std::string last_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1);
}

std::string without_thread_line(const std::string& out) {
  return out.rfind("threads: ", 0) == 0 ? out.substr(out.find('\n') + 1) : out;
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

class GenerateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("generate_cli");
    deck_ = dir_ + "/gen.deck";
    std::ofstream(deck_) << "[run]\nout_dir = " << dir_ << "/out\n";
    model_ = test::data_dir() + "/hf/tiny_gqa2";
    H5File ref(model_ + "/generation.h5", H5File::Read);
    prompt_ = ref.read_i32("prompt_1");
    want_ = ref.read_i32("generated_1");
  }
  std::string cmd(int np, const std::string& args) {
    return "{ " + mpirun(np) + lctrain() + " --generate " + deck_ + " --checkpoint " + model_ + " " + args + " 2>" +
           dir_ + "/err.txt; }";
  }
  std::string dir_, deck_, model_;
  std::vector<int32_t> prompt_, want_;
};

TEST_F(GenerateCli, IdsEqualTransformersOnAnyLayout) {
  for (const std::string layout : {"--parallel.cp=2", "--parallel.tp=2 --parallel.cp=2"}) {
    const int np = layout.find("tp=2") != std::string::npos ? 4 : 2;
    const auto r = test::run_command(cmd(np, "--prompt-ids " + join(prompt_) + " --max-new 64 --ids " + layout));
    ASSERT_EQ(r.exit_code, 0) << r.output << test::read_file(dir_ + "/err.txt");
    EXPECT_EQ(last_line(r.output), join(want_)) << layout << ": stdout ends with the id line";
    EXPECT_NE(test::read_file(dir_ + "/err.txt").find("cp=2"), std::string::npos);
  }
  // --max-new cuts the same greedy sequence.
  const auto r = test::run_command(cmd(1, "--prompt-ids " + join(prompt_) + " --max-new 5 --ids"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(last_line(r.output), join(std::vector<int32_t>(want_.begin(), want_.begin() + 5)));
}

// A dynamic-NTK model runs past max_position_embeddings (its original length, where HF reads it):
// no context limit unless generate.max_context sets one (it was refused past 16 tokens here).
TEST_F(GenerateCli, DynamicRopeRunsPastTheOriginalLength) {
  const std::string model = dir_ + "/dynamic";
  std::filesystem::create_directories(model);
  for (const char* f : {"model.safetensors", "generation_config.json"})
    std::filesystem::copy_file(model_ + "/" + f, model + "/" + f, std::filesystem::copy_options::overwrite_existing);
  nlohmann::json j = nlohmann::json::parse(test::read_file(model_ + "/config.json"));
  j["max_position_embeddings"] = 16;
  j["rope_parameters"] = {{"rope_theta", 50000.0}, {"rope_type", "dynamic"}, {"factor", 2.0}};
  std::ofstream(model + "/config.json") << j.dump(1);
  std::vector<int32_t> prompt(20);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(i + 3);
  const std::string base = "{ " + mpirun(1) + lctrain() + " --generate " + deck_ + " --checkpoint " + model +
                           " --prompt-ids " + join(prompt) + " --max-new 4 --ids";
  auto r = test::run_command(base + " 2>" + dir_ + "/err.txt; }");
  ASSERT_EQ(r.exit_code, 0) << r.output << test::read_file(dir_ + "/err.txt");
  const std::string ids = last_line(r.output);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), ','), 3) << r.output;
  r = test::run_command(base + " --generate.max_context=22 2>" + dir_ + "/err.txt; }");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(test::read_file(dir_ + "/err.txt").find("exceed the model's context of 22 tokens"), std::string::npos);
}

TEST_F(GenerateCli, BadInputIsExitCode2) {
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"--prompt-ids 1,2,96 --ids", "outside the model's vocabulary [0, 96)"},
      {"--prompt-ids 1,x --ids", "--prompt-ids: 'x' is not a token id"},
      {"--prompt-ids 1,2, --ids", "ends with a comma"},
      {"--ids", "exactly one of --prompt TEXT"},
      {"--prompt-ids 1,2 --max-new 255 --ids", "exceed the model's context of 256 tokens"},
      {"--prompt hello", "data.tokenizer = bytes has 258 ids but the model's vocabulary is 96"},
      {"--prompt hello --generate.chat=true --data.tokenizer=" + test::data_dir() + "/tokenizer/llama3_style/tokenizer.json",
       "llama3_style/tokenizer.json has 1508 ids but the model's vocabulary is 96"},
      {"--prompt-ids 1,2 --generate.chat=true", "generate.chat = true needs a text prompt"},
      {"--prompt-ids 1,2 --generate.top_p=0", "generate.top_p"},
      // a prompt file that is a directory, or empty: no prompt (both ran with BOS alone)
      {"--prompt-file " + dir_, "--prompt-file: '" + dir_ + "' is a directory"},
      {"--prompt-file " + dir_ + "/empty.txt", "--prompt-file: '" + dir_ + "/empty.txt' is empty"},
  };
  std::ofstream(dir_ + "/empty.txt") << "";
  for (const Case& c : cases) {
    const auto r = test::run_command(cmd(2, c.args + " --parallel.cp=2"));
    const std::string err = test::read_file(dir_ + "/err.txt");
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << c.args << "\n" << err;
    EXPECT_EQ(without_thread_line(r.output), "") << "nothing generated on stdout: " << c.args;
  }
}

}  // namespace
}  // namespace lct
