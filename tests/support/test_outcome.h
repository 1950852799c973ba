// The exit status of a GoogleTest binary as CTest should read it (SKIP_RETURN_CODE 77 in lct_test):
// 1 when any case failed, 77 when every case that ran was skipped, 0 otherwise. GoogleTest itself
// returns 0 for a skipped case, so one skip among failures must not decide the verdict (a regular
// expression on "[  SKIPPED ]" would report a binary with failed cases as skipped).
#pragma once

#include <gtest/gtest.h>

namespace lct::test {

constexpr int kExitSkipped = 77;

enum class Outcome { Passed = 0, Skipped = 1, Failed = 2 };

inline Outcome outcome_of_run(int run_all_tests_result) {
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  if (run_all_tests_result != 0 || u.failed_test_count() > 0 || u.ad_hoc_test_result().Failed())
    return Outcome::Failed;
  if (u.skipped_test_count() > 0 && u.successful_test_count() == 0) return Outcome::Skipped;
  return Outcome::Passed;
}

inline int exit_code_of(Outcome o) {
  return o == Outcome::Failed ? 1 : o == Outcome::Skipped ? kExitSkipped : 0;
}

}  // namespace lct::test
