// Cases for test_ctest_semantics.sh: one that fails, one that skips, one that passes, and one that
// skips on rank 0 but fails on the other ranks. The script picks them with --gtest_filter and checks
// what CTest reports for each mix. Not a test of lctrain: a test of how CTest reads our test mains.
#include <gtest/gtest.h>
#include <mpi.h>

namespace {

int world_rank() {
  int init = 0, rank = 0;
  MPI_Initialized(&init);
  if (init) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

TEST(Demo, Fails) { FAIL() << "this case fails on purpose"; }
TEST(Demo, Skips) { GTEST_SKIP() << "this case skips on purpose"; }
TEST(Demo, Passes) { SUCCEED(); }
TEST(Demo, SkipsOnRank0FailsElsewhere) {
  if (world_rank() == 0) GTEST_SKIP() << "rank 0 skips";
  FAIL() << "rank " << world_rank() << " fails";
}

}  // namespace
