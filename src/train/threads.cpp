#include "train/threads.h"

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace lct {

namespace {

constexpr int kWords = CPU_SETSIZE / 64;

std::vector<uint64_t> affinity_words() {
  std::vector<uint64_t> w(kWords, 0);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    const long n = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
    for (long c = 0; c < n && c < CPU_SETSIZE; ++c) w[size_t(c / 64)] |= uint64_t(1) << (c % 64);
    return w;
  }
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) w[size_t(c / 64)] |= uint64_t(1) << (c % 64);
  return w;
}

int popcount(const uint64_t* w) {
  int n = 0;
  for (int i = 0; i < kWords; ++i) n += __builtin_popcountll(w[i]);
  return n;
}

std::string hostname() {
  char h[256] = {0};
  if (gethostname(h, sizeof h - 1) != 0) return "?";
  return h;
}

}  // namespace

ThreadPlan configure_threads(MPI_Comm world) {
  int rank = 0;
  MPI_Comm_rank(world, &rank);
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int nrank = 0, nsize = 1;
  MPI_Comm_rank(node, &nrank);
  MPI_Comm_size(node, &nsize);

  ThreadPlan p;
  const std::vector<uint64_t> mine = affinity_words();
  std::vector<uint64_t> all(size_t(kWords) * size_t(nsize));
  MPI_Allgather(mine.data(), kWords, MPI_UINT64_T, all.data(), kWords, MPI_UINT64_T, node);
  p.cpus = std::max(1, popcount(mine.data()));
  p.sharing = 0;
  std::vector<uint64_t> uni(kWords, 0);
  for (int r = 0; r < nsize; ++r) {
    const uint64_t* m = all.data() + size_t(r) * kWords;
    bool overlap = false;
    for (int i = 0; i < kWords; ++i) {
      overlap = overlap || (m[i] & mine[size_t(i)]) != 0;
      uni[size_t(i)] |= m[i];
    }
    if (overlap || r == nrank) ++p.sharing;
  }
  p.node_ranks = nsize;
  p.node_cpus = std::max(1, popcount(uni.data()));

  const char* env = std::getenv("OMP_NUM_THREADS");
  p.from_env = env && *env;
  if (p.from_env) {
    p.threads = omp_get_max_threads();
  } else {
    p.threads = std::max(1, p.cpus / p.sharing);
    omp_set_num_threads(p.threads);
  }
  int threads = p.threads;
  MPI_Allreduce(&threads, &p.node_threads, 1, MPI_INT, MPI_SUM, node);
  MPI_Comm_free(&node);

  p.line = p.from_env ? str("threads: ", p.threads, " OpenMP thread(s) per rank (OMP_NUM_THREADS=", env, ")")
                      : str("threads: ", p.threads, " OpenMP thread(s) per rank (", p.cpus,
                            " CPU(s) in its affinity mask, shared by ", p.sharing,
                            " rank(s); set OMP_NUM_THREADS to choose)");
  if (p.node_threads > p.node_cpus) {
    std::string fix;
    if (p.from_env && p.node_ranks <= p.node_cpus)
      fix = str("unset OMP_NUM_THREADS (lctrain then gives each rank its share of the CPUs) or set it to ",
                std::max(1, p.node_cpus / p.node_ranks));
    else
      fix = str("start at most ", p.node_cpus, " rank(s) on this node (mpirun -np ", p.node_cpus,
                ", or sbatch --ntasks-per-node), or give each rank CPUs of its own (sbatch --cpus-per-task; "
                "mpirun --map-by ppr:<ranks>:node:PE=<cpus> --bind-to core)");
    p.warning = str("oversubscribed: ", p.node_ranks, " rank(s) run ", p.node_threads, " OpenMP threads in all on the ",
                    p.node_cpus, " CPU(s) of node ", hostname(), "; threads that share a CPU make every step wait for "
                    "the slowest. Fix: ", fix);
  }
  // Reported once: by the lowest rank of an oversubscribed node (rank 0's node first).
  int candidate = p.warning.empty() ? INT32_MAX : rank, reporter = INT32_MAX;
  MPI_Allreduce(&candidate, &reporter, 1, MPI_INT, MPI_MIN, world);
  info(p.line);
  if (reporter == rank) log_warn(p.warning);
  return p;
}

}  // namespace lct
