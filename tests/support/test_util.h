// Helpers shared by tests: paths, relative errors, running commands.
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace lct::test {

// The source tree (LCT_SOURCE_DIR, set by CTest) and a scratch folder under the build tree.
std::string source_dir();
std::string data_dir();  // source_dir()/tests/data
// A fresh, empty directory for this test (removed and recreated); unique per test name.
std::string scratch_dir(const std::string& name);
// The build's bin/ folder (LCT_BINARY_DIR/bin).
std::string bin_dir();
// The project's Python: LCT_PYTHON, else the .venv that `make deps` makes (tools/requirements.txt),
// else python3 from PATH.
std::string python_exe();

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a shell command, capturing its output and exit code.
CommandResult run_command(const std::string& cmd);

// The whole content of a text file ("" when it cannot be opened).
std::string read_file(const std::string& path);

// ||a - b|| / ||b|| in double.
template <class A, class B>
double rel_error(const A* a, const B* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}
template <class A, class B>
double rel_error(const std::vector<A>& a, const std::vector<B>& b) {
  return a.size() == b.size() ? rel_error(a.data(), b.data(), a.size()) : INFINITY;
}

}  // namespace lct::test
