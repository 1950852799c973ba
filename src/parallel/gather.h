// Variable-length lists gathered on one rank (reports and result files written by rank 0).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

namespace lct {

// Every rank's list, on rank 0 of `comm` (index: the rank in comm); empty lists on the other ranks.
// Collective over comm. T is copied as bytes (every rank of a job has the same representation).
template <class T>
std::vector<std::vector<T>> gather_on_root(MPI_Comm comm, const std::vector<T>& mine) {
  static_assert(std::is_trivially_copyable_v<T>, "gather_on_root copies elements as bytes");
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const int n = int(mine.size() * sizeof(T));
  std::vector<int> counts(size_t(size), 0), displs(size_t(size), 0);
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  int sum = 0;
  for (int r = 0; r < size; ++r) displs[size_t(r)] = sum, sum += counts[size_t(r)];
  std::vector<char> all(size_t(rank == 0 ? std::max(sum, 1) : 1));
  MPI_Gatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, 0, comm);
  std::vector<std::vector<T>> per_rank(static_cast<size_t>(size));
  if (rank != 0) return per_rank;
  for (int r = 0; r < size; ++r) {
    per_rank[size_t(r)].resize(size_t(counts[size_t(r)]) / sizeof(T));
    const char* from = all.data() + displs[size_t(r)];
    std::copy(from, from + counts[size_t(r)], reinterpret_cast<char*>(per_rank[size_t(r)].data()));
  }
  return per_rank;
}

}  // namespace lct
