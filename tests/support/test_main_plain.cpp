// GoogleTest main without MPI: for tests that launch `mpirun bin/lctrain ...` themselves.
// Exit 77 (CTest: skipped) only when every case was skipped (test_outcome.h).
#include <gtest/gtest.h>

#include "test_outcome.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return lct::test::exit_code_of(lct::test::outcome_of_run(RUN_ALL_TESTS()));
}
