// The process grid: which world rank holds which tensor-, context- and data-parallel coordinate,
// and in what order the ranks of each context-parallel ring pass K/V. A pure function of the
// machine shape, so `--plan` builds the same layout without MPI.
//
// Grid rule (Megatron's "tp-cp-dp"): tp varies fastest (adjacent ranks, same node), then cp,
// then dp: world = t + tp * (c + cp * d). The ring of cp group (t, d) holds the ranks with grid
// coordinate c = 0..cp-1; its ORDER (cp_rank = position in the ring) is network-aware:
// consecutive members share a node where possible and every hop between nodes joins ranks on
// the same rail (same NIC index: one switch hop on a rail-optimized fabric). See docs/parallel.md.
//
// Hierarchical context parallelism (parallel.cp_comm_type = a2a | a2a+p2p): cp = U x R with
// c = u + U * rc. The U members of one (t, rc, d) are adjacent (like tp) and must share a node:
// they exchange heads by all-to-all (the a2a group, a2a_rank = u). The R members of one (t, u, d)
// form a ring (ring_rank = position, in the network-aware order of today's rings). A rank's
// SHARDING index, cp_rank = a2a_rank + U * ring_rank, says which zigzag chunks of a sequence it
// holds; after the all-to-all, ring position r holds the chunks of cp_ranks U r .. U r + U - 1 for
// Hq / U heads, so the R ring is a zigzag ring of 2R big chunks. U = 1 is today's pure ring
// (cp_rank = ring position).
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
  int cp_coord = 0;  // grid coordinate c (rank order); cp_rank = a2a_rank + U * ring_rank is the sharding index
  int cp_prev = 0, cp_next = 0;  // world ranks: neighbours in the R ring (self when R = 1)
  int a2a_rank = 0;   // u: rank in the all-to-all group (0 when U = 1)
  int ring_rank = 0;  // position in its R ring (= cp_rank when U = 1)
};

struct Layout {
  int tp = 1, cp = 1, dp = 1;
  int cp_a2a = 1 /*U*/, cp_ring = 1 /*R*/;  // cp = U x R
  bool ring_aware = true;
  Topology topo;
  std::vector<RankPlace> ranks;            // per world rank
  std::vector<std::vector<int>> cp_rings;  // each R ring's world ranks in ring order (one per (t, u, d))
  std::vector<std::vector<int>> a2a_groups;  // each U group's world ranks in a2a-rank order (one per (t, rc, d))
  std::vector<std::vector<int>> cp_groups;   // each whole U x R cp group in cp_rank order (one per (t, d))
  std::vector<std::vector<int>> tp_groups, dp_groups, dpcp_groups;
  // "p2p" (U = 1), "a2a" (R = 1, U > 1) or "a2a+p2p": what the layout does, for reports.
  std::string cp_comm_type() const;

  // Hops of all cp rings by link class (a ring of n > 1 ranks has n hops).
  int ring_hops(LinkClass c) const;
};

// Builds and checks the layout; InputError (exit 2) when tp * cp does not divide the world etc.
// dp = 0 means world / (tp * cp). cp_a2a = U, the all-to-all group size (must divide cp; tp x U
// must fit in a node and every U group lie in one node).
Layout make_layout(const Topology& topo, int tp, int cp, int dp, bool ring_aware, int cp_a2a = 1);

// The head rules of all-to-all context parallelism (U > 1), with Hq = n_heads / tp and
// Hkv = n_kv_heads / tp: U divides Hq, and Hkv and U divide one another (K/V heads are replicated
// only when U > Hkv, each to U / Hkv ranks). InputError naming the keys otherwise. U = 1: no-op.
void check_cp_heads(int64_t n_heads, int64_t n_kv_heads, int tp, int cp_a2a);
// What K/V replication costs when U > Hkv (one line for the start log), "" when there is none.
// kv_bytes: this rank's K and V of one layer and micro-batch before the all-to-all
// (2 x B x T/cp x Hkv x head_dim x act bytes).
std::string kv_replication_note(int64_t n_kv_heads, int tp, int cp_a2a, int64_t kv_bytes);

// The ring order of one cp group: members (world ranks in grid order c = 0..cp-1).
std::vector<int> ring_order(const Topology& topo, const std::vector<int>& members, bool aware);

// layout.json: {"world_size", "tp", "cp", "dp", "cp_comm_type", "cp_a2a", "cp_ring", "nodes",
// "ranks_per_node", "ring_order", "ring_hops": {...}, "a2a_groups": [[world ranks], ...],
// "ranks": [{"rank", "node", "local_rank", "rail", "tp_rank", "cp_rank", "dp_rank", "cp_prev",
// "cp_next", "a2a_rank", "ring_rank"}, ...]}
std::string layout_json(const Layout& L);
// The table rank 0 prints at start.
std::string layout_table(const Layout& L);

}  // namespace lct
