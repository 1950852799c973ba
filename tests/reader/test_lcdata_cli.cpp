// lcdata end to end: text -> each format, info, convert, and exit code 2 with a clear message on
// bad input. Runs the lcdata built from src/apps/lcdata.cpp against lct_data (tests/lcdata_under_test).
#include "data_test_util.h"

namespace lct {
namespace {

std::string lcdata() { return test::bin_dir() + "/../tests/lcdata_under_test"; }

test::CommandResult run(const std::string& args) { return test::run_command(lcdata() + " " + args); }

std::string field(const std::string& info, const std::string& key) {
  const size_t at = info.find(key + ": ");
  if (at == std::string::npos) return "";
  const size_t end = info.find('\n', at);
  return info.substr(at + key.size() + 2, end - at - key.size() - 2);
}

TEST(LcdataCli, TextInfoConvert) {
  const std::string dir = test::scratch_dir("lcdata_cli");
  {
    std::ofstream(dir + "/a.txt") << "Hello, long context!\n";
    std::ofstream(dir + "/b.txt") << "Second document: digits 12345 and spaces    end.";
  }
  auto r = run("text --tokenizer bytes --out " + dir + "/c.h5 " + dir + "/a.txt " + dir + "/b.txt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run("info " + dir + "/c.h5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(field(r.output, "format"), "hdf5 (version 1)");
  EXPECT_EQ(field(r.output, "documents"), "2");
  EXPECT_EQ(field(r.output, "tokens"), "69");
  EXPECT_EQ(field(r.output, "tokenizer"), "bytes");
  EXPECT_EQ(field(r.output, "vocab_size"), "258");
  EXPECT_EQ(field(r.output, "eod_token"), "257");
  EXPECT_EQ(field(r.output, "stream_tokens"), "71");
  const std::string sha = field(r.output, "stream_sha256");
  EXPECT_EQ(sha.size(), 64u);
  // The same text through llm.c and Megatron, and conversions: one stream, one checksum.
  ASSERT_EQ(run("text --tokenizer bytes --format llmc --out " + dir + "/c.bin " + dir + "/a.txt " + dir + "/b.txt").exit_code, 0);
  ASSERT_EQ(run("text --tokenizer bytes --out " + dir + "/m.idx " + dir + "/a.txt - < " + dir + "/b.txt").exit_code, 0);
  ASSERT_EQ(run("convert " + dir + "/c.h5 " + dir + "/conv.bin").exit_code, 0);
  ASSERT_EQ(run("convert " + dir + "/m.idx " + dir + "/conv.h5").exit_code, 0);
  for (const char* f : {"/c.bin", "/m.idx", "/conv.bin", "/conv.h5"}) {
    r = run(std::string("info ") + dir + f);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(field(r.output, "stream_sha256"), sha) << f << "\n" << r.output;
  }
  EXPECT_EQ(field(run("info " + dir + "/c.bin").output, "format"), "llmc (magic 20240520, version 1)");
  EXPECT_EQ(field(run("info " + dir + "/m.idx").output, "format"), "megatron (version 1)");
}

TEST(LcdataCli, BadInputExitsTwoWithAMessage) {
  const std::string dir = test::scratch_dir("lcdata_cli_bad");
  std::ofstream(dir + "/junk.bin") << "not a token file at all";
  std::ofstream(dir + "/a.txt") << "text";
  std::ofstream(dir + "/mask.jsonl") << "{\"tokens\": [1, 2, 3], \"loss_mask\": [0, 7, 1]}\n";
  std::ofstream(dir + "/blank.txt") << "  \n";
  std::ofstream(dir + "/good.jsonl") << "{\"tokens\": [1, 2, 3], \"loss_mask\": [0, true, 1]}\n";
  struct Case {
    std::string args, needle;
  };
  for (const Case& c : {Case{"info " + dir + "/junk.bin", "unrecognised format"},
                        Case{"info " + dir + "/missing.h5", "no such file"},
                        Case{"info", "takes one FILE"},
                        Case{"text --out " + dir + "/x.h5 " + dir + "/junk.bin", "--tokenizer is required"},
                        Case{"text --tokenizer bytes --out " + dir + "/x.h5 " + dir + "/nope.txt", "nope.txt"},
                        Case{"text --tokenizer bytes --format parquet --out " + dir + "/x " + dir + "/junk.bin", "parquet"},
                        Case{"text --tokenizer " + dir + "/missing.json --out " + dir + "/x.h5 " + dir + "/junk.bin", "missing.json"},
                        Case{"convert " + dir + "/junk.bin " + dir + "/y.h5", "unrecognised format"},
                        Case{"convert " + test::formats_dir() + "/h5py_native.h5 " + dir + "/y.bin", "--drop-loss-mask"},
                        Case{"frobnicate", "unknown command"},
                        Case{"info --bogus x", "unknown option --bogus"},
                        // silent fallbacks that were: --bos=false turned BOS on, the first --out won,
                        // an empty value meant the default, a mask of 7 became 1, r.txt held hdf5
                        Case{"text --tokenizer bytes --bos=false --out " + dir + "/x.h5 " + dir + "/a.txt", "is a flag and takes no value"},
                        Case{"text --tokenizer bytes --out " + dir + "/x.h5 --out " + dir + "/y.h5 " + dir + "/a.txt", "given twice"},
                        Case{"synth --task passkey --length 64 --docs= --out " + dir + "/s.h5", "--docs has an empty value"},
                        Case{"tokens --vocab-size 10 --out " + dir + "/t.h5 " + dir + "/mask.jsonl", "loss_mask entry 7 is not 0 or 1"},
                        Case{"tokens --vocab-size 10 --eod 10 --out " + dir + "/t.h5 " + dir + "/good.jsonl", "lcdata: error: --eod 10 must be an integer in [-1, 9]"},
                        Case{"ruler --task vt --unit 512 --docs 1 --out " + dir + "/r.txt", "name the output .h5"},
                        Case{"ruler --task niah_single_2 --unit 512 --docs 1 --haystack " + dir + "/blank.txt --out " + dir + "/r.h5",
                             "blank.txt' is empty"},
                        Case{"ruler --task niah_single_2 --unit 512 --docs 1 --haystack " + dir + " --out " + dir + "/r.h5",
                             "is a directory"}}) {
    const auto r = run(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find("lcdata: error:"), std::string::npos) << r.output;
  }
  EXPECT_EQ(run("--help").exit_code, 0);
}

// lcdata tokens: a boolean loss mask is read as 0/1 (true was stored as 0, its loss lost), and a
// document without tokens is skipped with a word instead of silently.
TEST(LcdataCli, TokensReadsBooleanMasksAndCountsEmptyDocuments) {
  const std::string dir = test::scratch_dir("lcdata_cli_tokens");
  std::ofstream(dir + "/g.jsonl") << "{\"tokens\": [1, 2, 3], \"loss_mask\": [0, true, 1]}\n"
                                  << "{\"tokens\": [], \"loss_mask\": []}\n";
  auto r = run("tokens --vocab-size 10 --out " + dir + "/g.h5 " + dir + "/g.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped 1 document(s) without tokens"), std::string::npos) << r.output;
  r = run("info " + dir + "/g.h5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(field(r.output, "loss_mask"), "yes (1 of 3 tokens masked out)");
}

}  // namespace
}  // namespace lct
