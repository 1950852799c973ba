// A rank's place in the job: the layout, its communicators (tp, cp, its all-to-all group and
// ring, dp, dp x cp, world) and the byte counters they share.
#pragma once

#include <memory>

#include <mpi.h>

#include "deck/config.h"
#include "parallel/comm.h"
#include "parallel/layout.h"

namespace lct {

struct ParallelContext {
  Layout layout;
  int world_rank = 0;
  MPI_Comm world_mpi = MPI_COMM_WORLD;  // control traffic (agree(), error verdicts)
  std::unique_ptr<Traffic> traffic;
  // cp: the whole U x R context-parallel group, rank = cp_rank (the sharding index); with U = 1
  // its rank order is the ring order. a2a: the U group (rank = a2a_rank); ring: the R ring (rank =
  // ring_rank, rank order = ring order; with U = 1 the same group as cp).
  // On a device backend (make_rank_backend) a2a and ring become device communicators only when
  // U > 1; with U = 1 the ring attention runs on cp (ring_comm()), and a2a / ring stay host MPI.
  std::unique_ptr<Comm> world, tp, cp, a2a, ring, dp, dpcp;

  const RankPlace& me() const { return layout.ranks[size_t(world_rank)]; }
  // Ring neighbours as ranks of ring_comm() (its rank order is the ring order).
  int cp_next() const { return (ring_comm()->rank() + 1) % ring_comm()->size(); }
  int cp_prev() const { return (ring_comm()->rank() + ring_comm()->size() - 1) % ring_comm()->size(); }
  // The communicators attention uses: the ring (cp itself when U = 1) and the all-to-all group
  // (null when U = 1).
  Comm* ring_comm() const { return layout.cp_a2a > 1 ? ring.get() : cp.get(); }
  Comm* a2a_comm() const { return layout.cp_a2a > 1 ? a2a.get() : nullptr; }
};

// Nodes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) unless parallel.ranks_per_node is set.
Topology detect_topology(MPI_Comm world, const ParallelConfig& pc);

// Builds the layout (InputError, on every rank alike, if it cannot work) and the communicators.
std::unique_ptr<ParallelContext> make_parallel_context(MPI_Comm world, const ParallelConfig& pc);

}  // namespace lct
