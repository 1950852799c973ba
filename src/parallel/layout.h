// The process grid: which world rank holds which tensor-, context- and data-parallel coordinate,
// and in what order the ranks of each context-parallel ring pass K/V. A pure function of the
// machine shape, so `--plan` builds the same layout without MPI.
//
// Grid rule (Megatron's "tp-cp-dp"): tp varies fastest (adjacent ranks, same node), then cp,
// then dp: world = t + tp * (c + cp * d). The ring of cp group (t, d) holds the ranks with grid
// coordinate c = 0..cp-1; its ORDER (cp_rank = position in the ring) is network-aware:
// consecutive members share a node where possible and every hop between nodes joins ranks on
// the same rail (same NIC index: one switch hop on a rail-optimized fabric). See docs/parallel.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lct {

struct Topology {
  int world_size = 1;
  int ranks_per_node = 1;
  std::vector<int> node_of;   // per world rank
  std::vector<int> local_of;  // node-local index per world rank
  std::vector<int> rail_of;   // NIC rail per world rank (rail_map[local] or local)
  int num_nodes() const;
};

// Blocked placement (ranks 0..R-1 on node 0, ...) as mpirun and SLURM use by default.
// rail_map: rail of each local index (empty = identity).
Topology make_topology(int world_size, int ranks_per_node, const std::vector<int64_t>& rail_map = {});
// From per-rank node ids (e.g. gathered from MPI_Comm_split_type): locals are assigned in rank order.
Topology topology_from_nodes(const std::vector<int>& node_of, const std::vector<int64_t>& rail_map = {});

enum class LinkClass { Self = 0, IntraNode = 1, SameRail = 2, CrossRail = 3 };
const char* link_class_name(LinkClass c);
LinkClass link_class(const Topology& topo, int a, int b);

struct RankPlace {
  int rank = 0, node = 0, local_rank = 0, rail = 0;
  int tp_rank = 0, cp_rank = 0, dp_rank = 0;
  int cp_coord = 0;  // grid coordinate c (rank order); cp_rank is the ring position
  int cp_prev = 0, cp_next = 0;  // world ranks
};

struct Layout {
  int tp = 1, cp = 1, dp = 1;
  bool ring_aware = true;
  Topology topo;
  std::vector<RankPlace> ranks;            // per world rank
  std::vector<std::vector<int>> cp_rings;  // each ring's world ranks in ring order
  std::vector<std::vector<int>> tp_groups, dp_groups, dpcp_groups;

  // Hops of all cp rings by link class (a ring of n > 1 ranks has n hops).
  int ring_hops(LinkClass c) const;
};

// Builds and checks the layout; InputError (exit 2) when tp * cp does not divide the world etc.
// dp = 0 means world / (tp * cp).
Layout make_layout(const Topology& topo, int tp, int cp, int dp, bool ring_aware);

// The ring order of one cp group: members (world ranks in grid order c = 0..cp-1).
std::vector<int> ring_order(const Topology& topo, const std::vector<int>& members, bool aware);

// layout.json: {"world_size", "tp", "cp", "dp", "nodes", "ranks_per_node", "ring_order",
// "ring_hops": {...}, "ranks": [{"rank", "node", "local_rank", "rail", "tp_rank", "cp_rank",
// "dp_rank", "cp_prev", "cp_next"}, ...]}
std::string layout_json(const Layout& L);
// The table rank 0 prints at start.
std::string layout_table(const Layout& L);

}  // namespace lct
