#include "test_util.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/wait.h>

namespace lct::test {

static std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : fallback;
}

std::string source_dir() { return env_or("LCT_SOURCE_DIR", LCT_TEST_SOURCE_DIR); }
std::string data_dir() { return source_dir() + "/tests/data"; }
std::string bin_dir() { return env_or("LCT_BINARY_DIR", LCT_TEST_BINARY_DIR) + "/bin"; }

std::string python_exe() {
  const char* v = std::getenv("LCT_PYTHON");
  if (v && *v) return v;
  const std::string venv = source_dir() + "/.venv/bin/python3";
  return std::filesystem::exists(venv) ? venv : "python3";
}

std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(env_or("LCT_BINARY_DIR", LCT_TEST_BINARY_DIR)) / "tests" / "scratch" / name;
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p);
  return p.string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace lct::test
