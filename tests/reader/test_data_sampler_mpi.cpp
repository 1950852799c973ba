// Under mpirun: every rank builds the loader as the trainer does (same options, its own dp rank);
// gathered in rank order, the replicas' samples are the dp = 1 stream, also after a resume.
#include <mpi.h>

#include "sampler_dataset.h"

namespace lct {
namespace {

std::vector<int32_t> flatten(const std::vector<Sample>& samples) {
  std::vector<int32_t> out;
  for (const auto& s : samples) out.insert(out.end(), s.tokens.begin(), s.tokens.end());
  return out;
}

TEST(SamplerMpi, GatheredReplicasEqualTheDp1Stream) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::string dir;
  if (rank == 0) {
    dir = test::scratch_dir("data_sampler_mpi");
    std::vector<int32_t> stream;
    std::vector<uint8_t> mask;
    test::write_sampler_dataset(dir, &stream, &mask);
  }
  int len = int(dir.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
  dir.resize(size_t(len));
  MPI_Bcast(&dir[0], len, MPI_CHAR, 0, MPI_COMM_WORLD);

  const int64_t T = 20, B = 4 * size;
  DataLoader mine(test::sampler_options(dir, 2), T, B, rank, size);
  DataLoader whole(test::sampler_options(dir, 0), T, B, 0, 1);
  const int steps = int(mine.samples_per_epoch() / B) + 2;
  for (int s = 0; s <= steps; ++s) {
    if (s == steps / 2) {  // resume mid-run from the saved cursor, as after a restart
      const int64_t c = mine.cursor();
      mine.seek(0);
      mine.seek(c);
    }
    const auto local = flatten(mine.next_step());
    std::vector<int32_t> all(local.size() * size_t(size));
    MPI_Allgather(local.data(), int(local.size()), MPI_INT, all.data(), int(local.size()), MPI_INT, MPI_COMM_WORLD);
    ASSERT_EQ(all, flatten(whole.next_step())) << "step " << s;
  }
}

}  // namespace
}  // namespace lct
