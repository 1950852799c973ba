#include "parallel/context.h"

#include <map>

#include "core/error.h"
#include "parallel/mpi_comm.h"

namespace lct {

Topology detect_topology(MPI_Comm world, const ParallelConfig& pc) {
  int size = 0, rank = 0;
  MPI_Comm_size(world, &size);
  MPI_Comm_rank(world, &rank);
  if (pc.ranks_per_node > 0) {
    if (size % pc.ranks_per_node != 0)
      throw InputError(str("parallel.ranks_per_node = ", pc.ranks_per_node, " does not divide the world size ", size,
                           "; use a divisor of ", size, " or 0 to detect nodes"));
    return make_topology(size, pc.ranks_per_node, pc.rail_map);
  }
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int leader = rank;  // a node's id: its lowest world rank
  MPI_Allreduce(MPI_IN_PLACE, &leader, 1, MPI_INT, MPI_MIN, node);
  MPI_Comm_free(&node);
  std::vector<int> leaders(size);
  MPI_Allgather(&leader, 1, MPI_INT, leaders.data(), 1, MPI_INT, world);
  std::map<int, int> ids;
  std::vector<int> node_of(size);
  for (int r = 0; r < size; ++r) {
    auto it = ids.find(leaders[r]);
    if (it == ids.end()) it = ids.emplace(leaders[r], int(ids.size())).first;
    node_of[r] = it->second;
  }
  return topology_from_nodes(node_of, pc.rail_map);
}

std::unique_ptr<ParallelContext> make_parallel_context(MPI_Comm world, const ParallelConfig& pc) {
  auto ctx = std::make_unique<ParallelContext>();
  ctx->world_mpi = world;
  MPI_Comm_rank(world, &ctx->world_rank);
  ctx->layout = make_layout(detect_topology(world, pc), pc.tp, pc.cp, pc.dp, pc.ring_aware, pc.cp_a2a);
  ctx->traffic = std::make_unique<Traffic>(&ctx->layout.topo, ctx->world_rank);
  int provided = 0;
  MPI_Query_thread(&provided);
  const bool threaded = provided == MPI_THREAD_MULTIPLE;
  Traffic* tr = ctx->traffic.get();
  const Layout& L = ctx->layout;
  std::vector<int> all(size_t(L.topo.world_size));
  for (int r = 0; r < L.topo.world_size; ++r) all[size_t(r)] = r;
  ctx->world = split_comm(world, {all}, tr, threaded);
  ctx->tp = split_comm(world, L.tp_groups, tr, threaded);
  ctx->cp = split_comm(world, L.cp_groups, tr, threaded);
  ctx->a2a = split_comm(world, L.a2a_groups, tr, threaded);
  ctx->ring = split_comm(world, L.cp_rings, tr, threaded);
  ctx->dp = split_comm(world, L.dp_groups, tr, threaded);
  ctx->dpcp = split_comm(world, L.dpcp_groups, tr, threaded);
  return ctx;
}

}  // namespace lct
