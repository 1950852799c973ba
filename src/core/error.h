// Errors and exit codes (docs/exit-codes.md).
//
// Two kinds of failure, as in LAMMPS:
//  - a collective error: every rank reaches the same conclusion (deck validation, a verdict that was
//    broadcast). Rank 0 prints it once, every rank exits with the same code.
//  - a one-rank error: only this rank knows. It prints with its rank and the job is aborted so no
//    other rank waits forever in a collective.
// Code that may fail on some ranks only and wants a clean collective error wraps the work in
// lct::agree() (parallel/agree.h), which turns a local error into a collective one.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lct {

// The exit-code table, the same on every rank.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,    // anything else (internal error, I/O failure, MPI failure)
  kExitInput = 2,      // bad input: deck, data file, checkpoint, layout
  kExitNumerical = 3,  // non-finite loss or gradient norm
  kExitRequeue = 75,   // EX_TEMPFAIL: checkpointed on a signal, requeue me
};

// Builds a message from streamable pieces: str("step ", 3, " of ", 10).
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& msg, bool collective = false)
      : std::runtime_error(msg), code_(code), collective_(collective) {}
  int code() const { return code_; }
  // True when every rank raises the same error at the same point.
  bool collective() const { return collective_; }
  Error as_collective() const { return Error(code_, what(), true); }

 private:
  int code_;
  bool collective_;
};

// Bad input: names what (key, file, offset), where, and how to fix it.
struct InputError : Error {
  explicit InputError(const std::string& msg, bool collective = false)
      : Error(kExitInput, msg, collective) {}
};

struct NumericalError : Error {
  explicit NumericalError(const std::string& msg, bool collective = false)
      : Error(kExitNumerical, msg, collective) {}
};

// An internal invariant broke: a bug, reported with the source location.
[[noreturn]] void internal_error(const char* file, int line, const std::string& msg);

}  // namespace lct

// LCT_CHECK(cond, pieces...) guards internal invariants; input problems throw InputError instead.
#define LCT_CHECK(cond, ...)                                                                   \
  do {                                                                                         \
    if (!(cond)) ::lct::internal_error(__FILE__, __LINE__, ::lct::str("check failed: " #cond " ", \
                                                                      ##__VA_ARGS__));         \
  } while (0)
