// OpenMP threads per rank. Without OMP_NUM_THREADS each rank uses (CPUs in its sched_getaffinity
// mask) / (ranks on the node whose masks overlap it): SLURM's --cpus-per-task, mpirun's binding and
// `taskset` are respected, and ranks that share CPUs share them out instead of each starting one
// thread per CPU. An explicit OMP_NUM_THREADS wins. More threads than CPUs on a node (ranks x
// threads) is reported once, by the lowest rank of such a node, with the fix.
#pragma once

#include <mpi.h>

#include <string>

namespace lct {

struct ThreadPlan {
  int threads = 1;            // this rank's OpenMP threads
  int cpus = 1;               // CPUs in this rank's affinity mask
  int sharing = 1;            // ranks on the node whose masks overlap this rank's (itself included)
  int node_ranks = 1, node_cpus = 1, node_threads = 1;  // this node: ranks, CPUs of all masks, threads
  bool from_env = false;      // OMP_NUM_THREADS was set
  std::string line;           // the start-up line (rank 0 prints it)
  std::string warning;        // non-empty on an oversubscribed node
};

// Collective over world: decides and applies (omp_set_num_threads) this rank's threads.
ThreadPlan configure_threads(MPI_Comm world);

}  // namespace lct
