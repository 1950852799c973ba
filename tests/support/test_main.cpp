// GoogleTest main for every test binary: initialises MPI so the same binary runs alone or under
// mpirun. Only rank 0 prints the test listing; a failure on any rank fails the run on every rank;
// exit 77 (CTest: skipped) only when every case on every rank was skipped (test_outcome.h).
#include <gtest/gtest.h>
#include <mpi.h>

#include "core/log.h"
#include "test_outcome.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  lct::log_init(rank, size);
  ::testing::InitGoogleTest(&argc, argv);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  // Failed on any rank > passed on any rank > skipped everywhere: the verdict is the same on every rank.
  const lct::test::Outcome local = lct::test::outcome_of_run(RUN_ALL_TESTS());
  int mine[2] = {local == lct::test::Outcome::Failed, local == lct::test::Outcome::Passed}, all[2] = {0, 0};
  MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  const lct::test::Outcome global = all[0] ? lct::test::Outcome::Failed
                                   : all[1] ? lct::test::Outcome::Passed
                                            : lct::test::Outcome::Skipped;
  return lct::test::exit_code_of(global);
}
