#include <algorithm>
// The process grid without MPI: for many (world, tp, cp, ranks_per_node, rail_map) shapes the layout
// follows the rules of docs/parallel.md (grid order, one group of each kind per rank, each ring one
// cycle, same-rail inter-node hops wherever the ring's nodes allow), and the errors name the keys.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "parallel/layout.h"

namespace lct {
namespace {

// Each rank appears in exactly one group, every group has `size` members.
void expect_partition(const std::vector<std::vector<int>>& groups, int world, size_t size, const char* kind) {
  std::vector<int> seen(size_t(world), 0);
  for (const auto& g : groups) {
    EXPECT_EQ(g.size(), size) << kind;
    for (int r : g) ++seen[size_t(r)];
  }
  for (int r = 0; r < world; ++r) EXPECT_EQ(seen[size_t(r)], 1) << kind << " group membership of rank " << r;
}

// The ring's members sorted by node, and whether every node holds the same rails, one member each:
// the condition under which the network-aware order promises same-rail inter-node hops.
bool rails_regular(const Topology& t, const std::vector<int>& ring, size_t* nodes, size_t* rails) {
  std::map<int, std::vector<int>> by_node;
  for (int r : ring) by_node[t.node_of[size_t(r)]].push_back(t.rail_of[size_t(r)]);
  std::vector<int> first;
  bool ok = true;
  for (auto& kv : by_node) {
    std::sort(kv.second.begin(), kv.second.end());
    if (std::set<int>(kv.second.begin(), kv.second.end()).size() != kv.second.size()) ok = false;
    if (first.empty()) first = kv.second;
    if (kv.second != first) ok = false;
  }
  *nodes = by_node.size();
  *rails = first.size();
  return ok;
}

struct Shape {
  int world, tp, cp, rpn;
  std::vector<int64_t> rail_map;
};

void check_layout(const Shape& sh, bool aware) {
  SCOPED_TRACE(::testing::Message() << "world " << sh.world << " tp " << sh.tp << " cp " << sh.cp << " rpn " << sh.rpn
                                    << " rails " << sh.rail_map.size() << (aware ? " aware" : " naive"));
  const Topology topo = make_topology(sh.world, sh.rpn, sh.rail_map);
  const Layout L = make_layout(topo, sh.tp, sh.cp, 0, aware);
  const int W = sh.world, tp = sh.tp, cp = sh.cp, dp = W / (tp * cp);
  ASSERT_EQ(L.dp, dp);
  ASSERT_EQ(L.ranks.size(), size_t(W));
  expect_partition(L.tp_groups, W, size_t(tp), "tp");
  expect_partition(L.cp_rings, W, size_t(cp), "cp");
  expect_partition(L.dp_groups, W, size_t(dp), "dp");
  expect_partition(L.dpcp_groups, W, size_t(dp * cp), "dp x cp");
  for (int r = 0; r < W; ++r) {
    const RankPlace& p = L.ranks[size_t(r)];
    // Grid rule: tp fastest, then cp, then dp.
    EXPECT_EQ(r, p.tp_rank + tp * (p.cp_coord + cp * p.dp_rank));
    EXPECT_EQ(p.node, r / sh.rpn);
    EXPECT_EQ(p.local_rank, r % sh.rpn);
    EXPECT_EQ(p.rail, sh.rail_map.empty() ? p.local_rank : int(sh.rail_map[size_t(p.local_rank)]));
    EXPECT_EQ(L.ranks[size_t(p.cp_next)].cp_prev, r);
  }
  for (const auto& g : L.tp_groups)
    for (size_t i = 0; i < g.size(); ++i) {
      EXPECT_EQ(g[i], g[0] + int(i)) << "tp groups are adjacent ranks";
      EXPECT_EQ(topo.node_of[size_t(g[i])], topo.node_of[size_t(g[0])]) << "a tp group sits in one node";
      EXPECT_EQ(L.ranks[size_t(g[i])].tp_rank, int(i));
    }
  for (const auto& g : L.dp_groups)
    for (size_t i = 0; i < g.size(); ++i) {
      EXPECT_EQ(L.ranks[size_t(g[i])].dp_rank, int(i));
      EXPECT_EQ(L.ranks[size_t(g[i])].tp_rank, L.ranks[size_t(g[0])].tp_rank);
      EXPECT_EQ(L.ranks[size_t(g[i])].cp_rank, L.ranks[size_t(g[0])].cp_rank);
    }
  for (const auto& g : L.dpcp_groups)
    for (int r : g) EXPECT_EQ(L.ranks[size_t(r)].tp_rank, L.ranks[size_t(g[0])].tp_rank);
  int cross = 0;
  for (const auto& ring : L.cp_rings) {
    // Same grid coordinates (t, d) and all of c; cp_rank is the position; one cycle by cp_next.
    std::set<int> coords;
    for (size_t i = 0; i < ring.size(); ++i) {
      const RankPlace& p = L.ranks[size_t(ring[i])];
      EXPECT_EQ(p.cp_rank, int(i));
      EXPECT_EQ(p.tp_rank, L.ranks[size_t(ring[0])].tp_rank);
      EXPECT_EQ(p.dp_rank, L.ranks[size_t(ring[0])].dp_rank);
      coords.insert(p.cp_coord);
    }
    EXPECT_EQ(coords.size(), size_t(cp));
    std::set<int> visited;
    int r = ring[0];
    for (int step = 0; step < cp; ++step) {
      EXPECT_TRUE(visited.insert(r).second) << "ring revisits rank " << r;
      r = L.ranks[size_t(r)].cp_next;
    }
    EXPECT_EQ(r, ring[0]) << "the ring closes after cp hops";
    int inter = 0, rc = 0;
    for (size_t i = 0; i < ring.size() && ring.size() > 1; ++i) {
      const LinkClass c = link_class(topo, ring[i], ring[(i + 1) % ring.size()]);
      inter += c == LinkClass::SameRail || c == LinkClass::CrossRail;
      rc += c == LinkClass::CrossRail;
    }
    cross += rc;
    if (!aware) {
      for (size_t i = 0; i < ring.size(); ++i) EXPECT_EQ(ring[i], ring[0] + sh.tp * int(i)) << "naive = rank order";
      continue;
    }
    // Network-aware promises: consecutive members share a node where possible; where the ring's
    // nodes hold the same rails (one member per rail), every inter-node hop is same-rail, with
    // the fewest inter-node hops the rule allows.
    size_t k = 0, m = 0;
    const bool regular = rails_regular(topo, ring, &k, &m);
    if (regular && cp > 1) {
      EXPECT_EQ(rc, 0) << "cross-rail hop in a ring whose nodes hold the same rails";
      if (k == 1)
        EXPECT_EQ(inter, 0);
      else if (m == 2 && k % 2 == 1)
        EXPECT_EQ(inter, 2 * int(k - 1)) << "two rails, odd node count: the rail-major snake";
      else
        EXPECT_EQ(inter, int(k)) << "each node entered and left once";
    }
  }
  EXPECT_EQ(cross, L.ring_hops(LinkClass::CrossRail));
}

std::vector<Shape> shapes() {
  std::vector<Shape> v;
  for (int world : {1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128})
    for (int rpn : {1, 2, 3, 4, 8})
      for (int tp : {1, 2, 4, 8})
        for (int cp : {1, 2, 3, 4, 6, 8, 16, 32}) {
          if (world % rpn || rpn % tp || world % (tp * cp)) continue;
          v.push_back({world, tp, cp, rpn, {}});
          if (rpn == 4) v.push_back({world, tp, cp, rpn, {3, 2, 1, 0}});     // reversed NIC numbering
          if (rpn == 4) v.push_back({world, tp, cp, rpn, {0, 0, 1, 1}});     // two GPUs per NIC
        }
  return v;
}

TEST(Layout, ManyShapesFollowTheRules) {
  const auto all = shapes();
  ASSERT_GT(all.size(), 300u);
  for (const Shape& s : all)
    for (bool aware : {true, false}) check_layout(s, aware);
}

TEST(Layout, AwareRingHasNoMoreCrossRailHopsThanNaive) {
  int better = 0;
  for (const Shape& s : shapes()) {
    const Topology topo = make_topology(s.world, s.rpn, s.rail_map);
    const Layout a = make_layout(topo, s.tp, s.cp, 0, true), n = make_layout(topo, s.tp, s.cp, 0, false);
    EXPECT_LE(a.ring_hops(LinkClass::CrossRail), n.ring_hops(LinkClass::CrossRail))
        << s.world << " " << s.tp << " " << s.cp << " " << s.rpn;
    EXPECT_EQ(a.ring_hops(LinkClass::IntraNode) + a.ring_hops(LinkClass::SameRail) + a.ring_hops(LinkClass::CrossRail),
              n.ring_hops(LinkClass::IntraNode) + n.ring_hops(LinkClass::SameRail) + n.ring_hops(LinkClass::CrossRail));
    better += a.ring_hops(LinkClass::CrossRail) < n.ring_hops(LinkClass::CrossRail);
  }
  EXPECT_GT(better, 20) << "shapes where awareness removes cross-rail hops";
}

// Hop counts of documented cases (docs/parallel.md).
TEST(Layout, DocumentedCases) {
  struct Case {
    int world, tp, cp, rpn;
    int intra, same, cross;        // aware
    int n_intra, n_same, n_cross;  // naive
  };
  for (const Case& c : {
           // The 8B 1M-token plan: tp 4 in a node, a ring of 8 over 4 nodes (rails r and r+4), 64 rings.
           Case{512, 4, 8, 8, 256, 256, 0, 256, 0, 256},
           // cp inside a node: all hops intra-node either way.
           Case{64, 1, 8, 8, 64, 0, 0, 64, 0, 0},
           // tp = 8 fills a node: a ring of one member per node, all on the rail of its tp rank.
           Case{512, 8, 8, 8, 0, 512, 0, 0, 512, 0},
           // cp = 4 over nodes of 2 ranks (the 8-rank test shape).
           Case{8, 1, 4, 2, 4, 4, 0, 4, 0, 4},
           // Two rails per node, three nodes (odd): the rail-major snake, 4 inter-node hops, all same-rail.
           Case{24, 4, 6, 8, 8, 16, 0, 12, 0, 12},
       }) {
    SCOPED_TRACE(::testing::Message() << c.world << " " << c.tp << " " << c.cp << " " << c.rpn);
    const Topology topo = make_topology(c.world, c.rpn);
    const Layout a = make_layout(topo, c.tp, c.cp, 0, true), n = make_layout(topo, c.tp, c.cp, 0, false);
    EXPECT_EQ(a.ring_hops(LinkClass::IntraNode), c.intra);
    EXPECT_EQ(a.ring_hops(LinkClass::SameRail), c.same);
    EXPECT_EQ(a.ring_hops(LinkClass::CrossRail), c.cross);
    EXPECT_EQ(n.ring_hops(LinkClass::IntraNode), c.n_intra);
    EXPECT_EQ(n.ring_hops(LinkClass::SameRail), c.n_same);
    EXPECT_EQ(n.ring_hops(LinkClass::CrossRail), c.n_cross);
  }
  // The ring of the 8-rank shape above, written out: node 0 {0, 1}, node 1 {2, 3}.
  const Layout L = make_layout(make_topology(8, 2), 1, 4, 0, true);
  EXPECT_EQ(L.cp_rings[0], (std::vector<int>{0, 1, 3, 2}));
}

TEST(Layout, UnevenNodesAndSharedNicsStillGetRailAlignedRings) {
  // Nodes holding different rail sets (4 + 2 members): 0 2 3 1 | 5 4, closing on rail 0.
  const Topology uneven = topology_from_nodes({0, 0, 0, 0, 1, 1});
  const Layout a = make_layout(uneven, 1, 6, 0, true);
  EXPECT_EQ(a.cp_rings[0], (std::vector<int>{0, 2, 3, 1, 5, 4}));
  EXPECT_EQ(a.ring_hops(LinkClass::CrossRail), 0);
  EXPECT_EQ(a.ring_hops(LinkClass::SameRail), 2);
  // Two GPUs per NIC (a rail used twice in a node): enter and leave by two members of one rail.
  const Layout b = make_layout(make_topology(8, 4, {0, 0, 1, 1}), 1, 8, 0, true);
  EXPECT_EQ(b.ring_hops(LinkClass::CrossRail), 0);
  EXPECT_EQ(b.ring_hops(LinkClass::SameRail), 2);
  std::vector<int> sorted = b.cp_rings[0];
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(Layout, NoCommonRailFallsBackToRankOrder) {
  // Node 0 holds rails {0, 1}, node 1 rails {2, 3} (rail_map per node cannot express that; use
  // uneven nodes with a rail map): no hop between the nodes can stay on one rail.
  Topology t = topology_from_nodes({0, 0, 1, 1});
  t.rail_of = {0, 1, 2, 3};
  const Layout a = make_layout(t, 1, 4, 0, true);
  EXPECT_EQ(a.cp_rings[0], (std::vector<int>{0, 1, 2, 3}));
  EXPECT_GT(a.ring_hops(LinkClass::CrossRail), 0);
  EXPECT_NE(layout_table(a).find("cross rails"), std::string::npos) << "the report says why";
}

TEST(Layout, RailMapDecidesTheRail) {
  const Topology t = make_topology(8, 4, {3, 2, 1, 0});
  EXPECT_EQ(t.rail_of, (std::vector<int>{3, 2, 1, 0, 3, 2, 1, 0}));
  EXPECT_EQ(link_class(t, 0, 4), LinkClass::SameRail);
  EXPECT_EQ(link_class(t, 0, 7), LinkClass::CrossRail);
  EXPECT_EQ(link_class(t, 0, 3), LinkClass::IntraNode);
  EXPECT_EQ(link_class(t, 5, 5), LinkClass::Self);
  try {
    make_topology(8, 4, {0, 1});
    FAIL() << "a short rail_map must be rejected";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.rail_map"), std::string::npos) << e.what();
  }
}

TEST(Layout, ErrorsNameTheKeysAndTheFix) {
  struct Bad {
    int world, tp, cp, dp, rpn;
    const char* needle;
  };
  for (const Bad& b : {Bad{8, 3, 1, 0, 8, "does not divide the world size 8"}, Bad{8, 2, 2, 3, 8, "set parallel.dp = auto or 2"},
                       Bad{8, 4, 1, 0, 2, "must sit inside one node"}, Bad{8, 0, 1, 0, 8, "must be >= 1"},
                       Bad{12, 2, 4, 0, 4, "choose tp and cp whose product divides 12"},
                       // products that would wrap around in int: 2 * 4 * (2^29 + 1) and 2^13 * 2^19
                       Bad{8, 2, 4, 536870913, 8, "2 * 4 * 536870913 = 4294967304 but the job has 8 ranks"},
                       Bad{4, 8192, 524288, 0, 4, "8192 * 524288 = 4294967296 does not divide the world size 4"}}) {
    try {
      make_layout(make_topology(b.world, b.rpn), b.tp, b.cp, b.dp, true);
      ADD_FAILURE() << "no error for " << b.needle;
    } catch (const InputError& e) {
      EXPECT_EQ(e.code(), kExitInput);
      EXPECT_NE(std::string(e.what()).find(b.needle), std::string::npos) << e.what();
    }
  }
}

TEST(Layout, JsonHasOneEntryPerRankWithTheIssueFields) {
  const Layout L = make_layout(make_topology(16, 4), 2, 4, 0, true);
  const auto j = nlohmann::json::parse(layout_json(L));
  ASSERT_EQ(j["ranks"].size(), 16u);
  EXPECT_EQ(j["tp"], 2);
  EXPECT_EQ(j["cp"], 4);
  EXPECT_EQ(j["dp"], 2);
  EXPECT_EQ(j["ring_hops"]["cross_rail"], 0);
  for (size_t r = 0; r < 16; ++r) {
    const auto& e = j["ranks"][r];
    for (const char* k : {"rank", "node", "local_rank", "tp_rank", "cp_rank", "dp_rank", "cp_prev", "cp_next"})
      ASSERT_TRUE(e.contains(k)) << k;
    EXPECT_EQ(e["rank"], int(r));
    EXPECT_EQ(e["cp_next"], L.ranks[r].cp_next);
    // cp_next is the rank at the next ring position.
    const int next = e["cp_next"];
    EXPECT_EQ(j["ranks"][size_t(next)]["cp_rank"], (int(e["cp_rank"]) + 1) % 4);
  }
  const std::string table = layout_table(L);
  EXPECT_NE(table.find("tp=2 cp=4 dp=2"), std::string::npos) << table;
}

// Hierarchical cp (issue 19): cp = U x R, c = u + U * rc. The U groups are adjacent (stride tp) and
// inside one node; each R ring holds the members c = u + U * rc of one (t, u, d) in network-aware
// order; cp_rank = a2a_rank + U * ring_rank is a permutation of 0..cp-1 in every cp group; the
// dp and dp x cp groups follow cp_rank; U = 1 is exactly today's layout.
TEST(Layout, HierarchicalCpGroupsRingsAndShardingIndex) {
  struct H {
    int world, tp, cp, U, rpn;
  };
  for (const H& h : {H{4, 1, 4, 2, 4}, H{4, 1, 4, 4, 4}, H{8, 1, 8, 2, 4}, H{8, 2, 4, 2, 4}, H{16, 2, 4, 2, 4},
                     H{32, 2, 8, 2, 4}, H{64, 1, 16, 4, 8}, H{512, 4, 8, 2, 8}, H{512, 1, 64, 8, 8},
                     H{512, 2, 16, 4, 8}, H{16, 1, 8, 8, 8}}) {
    SCOPED_TRACE(::testing::Message() << "world " << h.world << " tp " << h.tp << " cp " << h.cp << " U " << h.U
                                      << " rpn " << h.rpn);
    const Topology topo = make_topology(h.world, h.rpn);
    const Layout L = make_layout(topo, h.tp, h.cp, 0, true, h.U);
    const int W = h.world, tp = h.tp, cp = h.cp, U = h.U, R = cp / U, dp = W / (tp * cp);
    EXPECT_EQ(L.cp_a2a, U);
    EXPECT_EQ(L.cp_ring, R);
    EXPECT_EQ(L.cp_comm_type(), U == 1 ? "p2p" : R == 1 ? "a2a" : "a2a+p2p");
    expect_partition(L.a2a_groups, W, size_t(U), "a2a");
    expect_partition(L.cp_rings, W, size_t(R), "ring");
    expect_partition(L.cp_groups, W, size_t(cp), "cp");
    expect_partition(L.dp_groups, W, size_t(dp), "dp");
    expect_partition(L.dpcp_groups, W, size_t(dp * cp), "dp x cp");
    for (int r = 0; r < W; ++r) {
      const RankPlace& p = L.ranks[size_t(r)];
      EXPECT_EQ(r, p.tp_rank + tp * (p.cp_coord + cp * p.dp_rank));
      EXPECT_EQ(p.a2a_rank, p.cp_coord % U);
      EXPECT_EQ(p.cp_rank, p.a2a_rank + U * p.ring_rank);
      EXPECT_EQ(L.ranks[size_t(p.cp_next)].cp_prev, r);
    }
    for (const auto& g : L.a2a_groups) {
      for (size_t i = 0; i < g.size(); ++i) {
        const RankPlace& p = L.ranks[size_t(g[i])];
        EXPECT_EQ(g[i], g[0] + tp * int(i)) << "a2a groups are adjacent (stride tp)";
        EXPECT_EQ(p.node, L.ranks[size_t(g[0])].node) << "an a2a group sits in one node";
        EXPECT_EQ(p.a2a_rank, int(i));
        EXPECT_EQ(p.ring_rank, L.ranks[size_t(g[0])].ring_rank) << "an a2a group shares its ring position";
        EXPECT_EQ(p.tp_rank, L.ranks[size_t(g[0])].tp_rank);
        EXPECT_EQ(p.dp_rank, L.ranks[size_t(g[0])].dp_rank);
      }
    }
    int cross = 0;
    for (const auto& ring : L.cp_rings) {
      std::vector<int> members;
      for (size_t i = 0; i < ring.size(); ++i) {
        const RankPlace& p = L.ranks[size_t(ring[i])];
        EXPECT_EQ(p.ring_rank, int(i));
        EXPECT_EQ(p.a2a_rank, L.ranks[size_t(ring[0])].a2a_rank);
        EXPECT_EQ(p.cp_next, ring[(i + 1) % ring.size()]);
        members.push_back(ring[i]);
      }
      std::sort(members.begin(), members.end());
      EXPECT_EQ(ring_order(topo, members, true), ring) << "each R ring is the network-aware order of its members";
      for (size_t i = 0; i < ring.size() && ring.size() > 1; ++i)
        cross += link_class(topo, ring[i], ring[(i + 1) % ring.size()]) == LinkClass::CrossRail;
    }
    EXPECT_EQ(cross, 0);
    EXPECT_EQ(L.ring_hops(LinkClass::CrossRail), 0);
    for (const auto& g : L.cp_groups)
      for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(L.ranks[size_t(g[i])].cp_rank, int(i)) << "cp groups in cp_rank order";
    for (const auto& g : L.dp_groups)
      for (int r : g) EXPECT_EQ(L.ranks[size_t(r)].cp_rank, L.ranks[size_t(g[0])].cp_rank);
    const auto j = nlohmann::json::parse(layout_json(L));
    EXPECT_EQ(j["cp_comm_type"], L.cp_comm_type());
    EXPECT_EQ(j["cp_a2a"], U);
    EXPECT_EQ(j["cp_ring"], R);
    EXPECT_EQ(j["a2a_groups"].size(), L.a2a_groups.size());
    EXPECT_EQ(j["ranks"][0]["a2a_rank"], 0);
    EXPECT_EQ(j["ranks"][size_t(W - 1)]["ring_rank"], L.ranks[size_t(W - 1)].ring_rank);
  }
}

// U = 1 changes nothing: the same rings, positions and groups as before (cp_rank = ring position).
TEST(Layout, AllToAllSizeOneIsTodaysRing) {
  for (int rpn : {2, 4, 8}) {
    const Layout a = make_layout(make_topology(16, rpn), 2, 4, 0, true), b = make_layout(make_topology(16, rpn), 2, 4, 0, true, 1);
    EXPECT_EQ(a.cp_rings, b.cp_rings);
    EXPECT_EQ(a.cp_rings, a.cp_groups) << "with U = 1 the cp group is the ring, in ring order";
    EXPECT_EQ(layout_json(a), layout_json(b));
    for (const auto& p : a.ranks) EXPECT_EQ(p.cp_rank, p.ring_rank);
    EXPECT_EQ(a.cp_comm_type(), "p2p");
  }
  // cp 8 over 2 nodes of 4, U = 2: rings of 4 through both nodes; the a2a pairs inside nodes.
  const Layout h = make_layout(make_topology(8, 4), 1, 8, 0, true, 2);
  EXPECT_EQ(h.a2a_groups, (std::vector<std::vector<int>>{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  ASSERT_EQ(h.cp_rings.size(), 2u);
  EXPECT_EQ(h.ring_hops(LinkClass::IntraNode) + h.ring_hops(LinkClass::SameRail), 8);
  // The dp x cp group (gradient reduction) is counted around the network-aware order of the whole
  // cp group: no cross-rail hop, as for the ring alone.
  ASSERT_EQ(h.dpcp_groups.size(), 1u);
  const std::vector<int>& g = h.dpcp_groups[0];
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NE(link_class(h.topo, g[i], g[(i + 1) % g.size()]), LinkClass::CrossRail) << g[i] << " -> " << g[(i + 1) % g.size()];
  const std::string table = layout_table(h);
  EXPECT_NE(table.find("a2a groups"), std::string::npos) << table;
  EXPECT_NE(table.find("[0,1] [2,3] [4,5] [6,7]"), std::string::npos) << table;
}

TEST(Layout, HierarchicalErrorsNameTheKeys) {
  struct Bad {
    int world, tp, cp, U, rpn;
    const char* needle;
  };
  for (const Bad& b : {Bad{8, 1, 8, 3, 8, "parallel.hierarchical_cp_sizes"}, Bad{8, 1, 8, 8, 4, "parallel.tp x U"},
                       Bad{16, 2, 8, 4, 4, "parallel.hierarchical_cp_sizes"}, Bad{12, 1, 12, 4, 6, "spans two nodes"}}) {
    try {
      make_layout(make_topology(b.world, b.rpn), b.tp, b.cp, 0, true, b.U);
      ADD_FAILURE() << "no error for " << b.needle;
    } catch (const InputError& e) {
      EXPECT_EQ(e.code(), kExitInput);
      EXPECT_NE(std::string(e.what()).find(b.needle), std::string::npos) << e.what();
    }
  }
  struct Heads {
    int64_t nh, nkv;
    int tp, U;
    bool ok;
  };
  for (const Heads& h : {Heads{8, 2, 1, 2, true}, Heads{8, 2, 1, 4, true}, Heads{8, 1, 1, 8, true}, Heads{8, 8, 2, 4, true},
                         Heads{6, 6, 1, 4, false}, Heads{8, 2, 2, 2, true}, Heads{8, 4, 2, 4, true}, Heads{12, 6, 1, 4, false}, Heads{12, 4, 1, 6, false},
                         Heads{12, 3, 1, 6, true}, Heads{8, 8, 1, 1, true}}) {
    SCOPED_TRACE(::testing::Message() << "n_heads " << h.nh << " n_kv_heads " << h.nkv << " tp " << h.tp << " U " << h.U);
    try {
      check_cp_heads(h.nh, h.nkv, h.tp, h.U);
      EXPECT_TRUE(h.ok) << "no error";
    } catch (const InputError& e) {
      EXPECT_FALSE(h.ok) << e.what();
      EXPECT_EQ(e.code(), kExitInput);
      const std::string m = e.what();
      EXPECT_NE(m.find("parallel.hierarchical_cp_sizes"), std::string::npos) << m;
      EXPECT_NE(m.find("parallel.tp"), std::string::npos) << m;
      EXPECT_NE(m.find(h.nh % (h.tp * h.U) ? "model.n_heads" : "model.n_kv_heads"), std::string::npos) << m;
    }
  }
  EXPECT_EQ(kv_replication_note(8, 1, 4, 1000), "");
  const std::string note = kv_replication_note(2, 1, 4, 1000);
  EXPECT_NE(note.find("each K/V head goes to 2 ranks"), std::string::npos) << note;
}

}  // namespace
}  // namespace lct
