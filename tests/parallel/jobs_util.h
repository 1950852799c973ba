// Helpers for tests that launch real jobs (`mpirun -np N lctrain DECK`) on a tiny model.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace lct::test {

// This test process is an MPI singleton; the variables that made it one (PMIX_*, OMPI_MCA_ess, ...)
// would make a child mpirun fail at once, so the command runs without them.
inline std::string clean_mpi_env() {
  std::string unset = "env";
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e, k = kv.substr(0, kv.find('='));
    const bool launcher = k.rfind("PMIX_", 0) == 0 || k.rfind("OMPI_MCA_orte_", 0) == 0 || k == "OMPI_MCA_ess" ||
                          k == "OMPI_MCA_pmix" || (k.rfind("OMPI_", 0) == 0 && k.rfind("OMPI_MCA_", 0) != 0 &&
                                                   k.rfind("OMPI_ALLOW_RUN_AS_ROOT", 0) != 0);
    if (launcher) unset += " -u " + k;
  }
  return unset + " ";
}

inline std::string mpirun(int np) {
  return str(clean_mpi_env(), LCT_MPIEXEC, " --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo",
             " --mca oob_tcp_if_include lo -np ", np, " ");
}

// An llm.c GPT-2 shard (256 x int32 header, uint16 tokens) of `n` tokens below `vocab`.
inline void write_shard(const std::string& path, int n, int vocab) {
  std::vector<int32_t> header(256, 0);
  header[0] = 20240520;
  header[1] = 1;
  header[2] = n;
  std::vector<uint16_t> tokens(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) tokens[size_t(i)] = uint16_t((i * 7 + i / 13) % vocab);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(header.data()), 1024);
  f.write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(2 * n));
}

inline std::string write_deck(const std::string& dir, const std::string& parallel, int steps) {
  write_shard(dir + "/data.bin", 20000, 64);
  const std::string path = dir + "/job.deck";
  std::ofstream(path) << "[run]\nout_dir = " << dir << "/out\nhang_timeout = 120\n"
                      << "[model]\nvocab_size = 64\ndim = 32\nn_layers = 2\nn_heads = 8\nn_kv_heads = 4\nhead_dim = 4\n"
                      << "ffn_dim = 24\n[train]\nseq_len = 32\nmicro_batch = 2\nsteps = " << steps
                      << "\nlr = 1e-3\n[data]\ntrain = " << dir << "/data.bin\n[parallel]\n"
                      << parallel;
  return path;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline std::string lctrain() { return bin_dir() + "/lctrain"; }

}  // namespace lct::test
