// A rank's place in the job: the layout, its communicators (tp, cp ring, dp, dp x cp, world)
// and the byte counters they share.
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
  std::unique_ptr<Comm> world, tp, cp, dp, dpcp;

  const RankPlace& me() const { return layout.ranks[size_t(world_rank)]; }
  // Ring neighbours as ranks of the cp communicator (its rank order is the ring order).
  int cp_next() const { return (cp->rank() + 1) % cp->size(); }
  int cp_prev() const { return (cp->rank() + cp->size() - 1) % cp->size(); }
};

// Nodes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) unless parallel.ranks_per_node is set.
Topology detect_topology(MPI_Comm world, const ParallelConfig& pc);

// Builds the layout (InputError, on every rank alike, if it cannot work) and the communicators.
std::unique_ptr<ParallelContext> make_parallel_context(MPI_Comm world, const ParallelConfig& pc);

}  // namespace lct
