// core/text_file.h: a text output is replaced whole (PATH.tmp, then a rename) and a failure names
// the file and what to check.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/text_file.h"
#include "test_util.h"

namespace lct {
namespace {
namespace fs = std::filesystem;

TEST(TextFile, WritesAndReplacesWholeFilesLeavingNoTemporary) {
  const std::string dir = test::scratch_dir("text_file");
  const std::string path = dir + "/out.csv";
  write_text_file_atomically(path, "a,b\n1,2\n");
  EXPECT_EQ(test::read_file(path), "a,b\n1,2\n");
  write_text_file_atomically(path, "x\n");
  EXPECT_EQ(test::read_file(path), "x\n") << "replaced, not appended";
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(TextFile, AFailureNamesTheFileAndTheHintAndKeepsTheOldFile) {
  const std::string dir = test::scratch_dir("text_file_fail");
  try {
    write_text_file_atomically(dir + "/missing/out.csv", "x\n", "is run.out_dir writable?");
    FAIL() << "no error for a directory that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitFailure);
    const std::string m = e.what();
    EXPECT_NE(m.find("cannot write " + dir + "/missing/out.csv.tmp"), std::string::npos) << m;
    EXPECT_NE(m.find("(is run.out_dir writable?)"), std::string::npos) << m;
  }
  // A rename that fails (the target is a non-empty directory) leaves what was there.
  const std::string target = dir + "/taken";
  fs::create_directories(target + "/inside");
  EXPECT_THROW(write_text_file_atomically(target, "x\n"), Error);
  EXPECT_TRUE(fs::is_directory(target + "/inside"));
}

}  // namespace
}  // namespace lct
