#include "parallel/layout.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lct {

int Topology::num_nodes() const {
  std::set<int> s(node_of.begin(), node_of.end());
  return int(s.size());
}

static void assign_rails(Topology& t, const std::vector<int64_t>& rail_map) {
  t.rail_of.resize(t.world_size);
  for (int r = 0; r < t.world_size; ++r) {
    const int local = t.local_of[r];
    if (rail_map.empty()) {
      t.rail_of[r] = local;
    } else {
      if (local >= int(rail_map.size()))
        throw InputError(str("parallel.rail_map has ", rail_map.size(), " entries but node-local rank ", local,
                             " exists; give one rail per local rank (", t.ranks_per_node, " entries)"));
      t.rail_of[r] = int(rail_map[local]);
    }
  }
}

Topology make_topology(int world_size, int ranks_per_node, const std::vector<int64_t>& rail_map) {
  if (ranks_per_node < 1) ranks_per_node = world_size;
  Topology t;
  t.world_size = world_size;
  t.ranks_per_node = ranks_per_node;
  for (int r = 0; r < world_size; ++r) {
    t.node_of.push_back(r / ranks_per_node);
    t.local_of.push_back(r % ranks_per_node);
  }
  assign_rails(t, rail_map);
  return t;
}

Topology topology_from_nodes(const std::vector<int>& node_of, const std::vector<int64_t>& rail_map) {
  Topology t;
  t.world_size = int(node_of.size());
  t.node_of = node_of;
  std::map<int, int> count;
  for (int n : node_of) t.local_of.push_back(count[n]++);
  t.ranks_per_node = 0;
  for (auto& kv : count) t.ranks_per_node = std::max(t.ranks_per_node, kv.second);
  assign_rails(t, rail_map);
  return t;
}

const char* link_class_name(LinkClass c) {
  switch (c) {
    case LinkClass::Self: return "self";
    case LinkClass::IntraNode: return "intra-node";
    case LinkClass::SameRail: return "inter-node same-rail";
    case LinkClass::CrossRail: return "inter-node cross-rail";
  }
  return "?";
}

LinkClass link_class(const Topology& t, int a, int b) {
  if (a == b) return LinkClass::Self;
  if (t.node_of[a] == t.node_of[b]) return LinkClass::IntraNode;
  return t.rail_of[a] == t.rail_of[b] ? LinkClass::SameRail : LinkClass::CrossRail;
}

namespace {

// Node-major ring: each node visited once, in order; the hop from node i to node i+1 uses a rail
// c_i that both hold, entering node i+1 on it. A node with several members must leave through
// another member than it entered by (another rail, or a second member on the same rail); a node
// with one member enters and leaves by it. rails[i] lists node i's members' rails (repeats when
// ranks share a NIC). Chooses the c_i by dynamic programming around the cycle; false when no
// such choice exists.
bool node_major_rails(const std::vector<std::vector<int>>& rails, std::vector<int>& c) {
  const size_t k = rails.size();
  auto common = [&](size_t a, size_t b) {
    std::vector<int> out;
    for (int r : rails[a])
      if (std::find(rails[b].begin(), rails[b].end(), r) != rails[b].end()) out.push_back(r);
    return out;
  };
  auto ok = [&](size_t node, int in, int out) {
    if (rails[node].size() == 1) return in == out;
    return in != out || std::count(rails[node].begin(), rails[node].end(), in) >= 2;
  };
  for (int s : common(k - 1, 0)) {  // c_{k-1}: the hop that closes the ring, entering node 0
    // reach[i][r] = predecessor choice of c_{i-1} that allows c_i = r (or -2 if unreachable).
    std::vector<std::map<int, int>> reach(k - 1);
    for (size_t i = 0; i + 1 < k; ++i)
      for (int r : common(i, i + 1)) {
        if (i == 0) {
          if (ok(0, s, r)) reach[0][r] = s;
          continue;
        }
        for (const auto& prev : reach[i - 1])
          if (ok(i, prev.first, r)) {
            reach[i][r] = prev.first;
            break;
          }
      }
    for (const auto& last : reach[k - 2]) {
      if (!ok(k - 1, last.first, s)) continue;
      c.assign(k, 0);
      c[k - 1] = s;
      int r = last.first;
      for (size_t i = k - 1; i-- > 0;) {
        c[i] = r;
        r = reach[i][r];
      }
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<int> ring_order(const Topology& t, const std::vector<int>& members, bool aware) {
  if (!aware || members.size() <= 2) return members;
  // Members per node (nodes in order of first appearance), each sorted by rail then rank.
  std::vector<int> node_ids;
  std::map<int, std::vector<int>> by_node;
  for (int r : members) {
    if (!by_node.count(t.node_of[r])) node_ids.push_back(t.node_of[r]);
    by_node[t.node_of[r]].push_back(r);
  }
  if (node_ids.size() == 1) return members;
  for (auto& kv : by_node)
    std::sort(kv.second.begin(), kv.second.end(), [&](int a, int b) {
      return t.rail_of[a] != t.rail_of[b] ? t.rail_of[a] < t.rail_of[b] : a < b;
    });
  const size_t k = node_ids.size();
  std::vector<std::vector<int>> rails(k);
  bool distinct = true;  // at most one member per rail on each node
  for (size_t i = 0; i < k; ++i) {
    for (int r : by_node[node_ids[i]]) rails[i].push_back(t.rail_of[r]);
    distinct = distinct && std::set<int>(rails[i].begin(), rails[i].end()).size() == rails[i].size();
  }
  auto member = [&](size_t node_idx, int rail) {
    for (int r : by_node[node_ids[node_idx]])
      if (t.rail_of[r] == rail) return r;
    return -1;
  };
  std::vector<int> order, c;
  if (node_major_rails(rails, c)) {
    for (size_t i = 0; i < k; ++i) {
      const std::vector<int>& mem = by_node[node_ids[i]];
      const int enter = c[(i + k - 1) % k], exit = c[i];
      // Enter by the first member on the entry rail, leave by the last one on the exit rail.
      const int first = member(i, enter);
      int last = -1;
      for (int r : mem)
        if (t.rail_of[r] == exit && r != first) last = r;
      if (mem.size() == 1) last = first;
      order.push_back(first);
      for (int r : mem)
        if (r != first && r != last) order.push_back(r);
      if (last != first) order.push_back(last);
    }
    return order;
  }
  // Two rails on every node and an odd number of nodes: no node-major ring exists; a rail-major
  // snake (along one rail through the nodes, back along the other) has more inter-node hops, all
  // on one rail.
  bool two_rails = distinct;
  for (size_t i = 0; i < k; ++i) two_rails = two_rails && rails[i] == rails[0] && rails[i].size() == 2;
  if (two_rails) {
    for (size_t i = 0; i < k; ++i) order.push_back(member(i, rails[0][0]));
    for (size_t i = k; i-- > 0;) order.push_back(member(i, rails[0][1]));
    return order;
  }
  return members;  // no rail-aligned ring in this node order: rank order (the report says so)
}

Layout make_layout(const Topology& topo, int tp, int cp, int dp, bool ring_aware, int cp_a2a) {
  const int W = topo.world_size;
  if (tp < 1 || cp < 1) throw InputError("parallel.tp and parallel.cp must be >= 1");
  // Products in int64: in int, 2 * 4 * (2^29 + 1) wrapped around to 8 and passed the check.
  // tc <= W once it divides W, so tc * dp cannot overflow int64 either.
  const int64_t tc = int64_t(tp) * cp;
  if (W % tc != 0)
    throw InputError(str("parallel.tp * parallel.cp = ", tp, " * ", cp, " = ", tc,
                         " does not divide the world size ", W, "; choose tp and cp whose product divides ", W));
  if (dp == 0) dp = int(W / tc);
  if (tc * int64_t(dp) != W)
    throw InputError(str("parallel.tp * cp * dp = ", tp, " * ", cp, " * ", dp, " = ", tc * dp,
                         " but the job has ", W, " ranks; set parallel.dp = auto or ", W / tc));
  if (topo.ranks_per_node % tp != 0 && tp > 1)
    throw InputError(str("parallel.tp = ", tp, " does not divide the ranks per node (", topo.ranks_per_node,
                         "): a tensor-parallel group must sit inside one node; choose tp dividing ",
                         topo.ranks_per_node));
  const int U = cp_a2a;
  if (U < 1 || cp % U != 0)
    throw InputError(str("the all-to-all size U = ", U, " (parallel.hierarchical_cp_sizes = U,R with "
                         "parallel.cp_comm_type) must divide parallel.cp = ", cp, " (U x R = cp)"));
  if (U > 1 && tp * U > topo.ranks_per_node)
    throw InputError(str("parallel.tp x U = ", tp, " x ", U, " = ", tp * U, " exceeds the ranks per node (",
                         topo.ranks_per_node, "): the all-to-all group (U of parallel.hierarchical_cp_sizes = U,R, "
                         "or parallel.cp with parallel.cp_comm_type = a2a) must sit inside one node; choose "
                         "parallel.tp x U <= ", topo.ranks_per_node, " or parallel.cp_comm_type = p2p"));
  const int R = cp / U;
  Layout L;
  L.tp = tp;
  L.cp = cp;
  L.dp = dp;
  L.cp_a2a = U;
  L.cp_ring = R;
  L.ring_aware = ring_aware;
  L.topo = topo;
  L.ranks.resize(W);
  for (int r = 0; r < W; ++r) {
    RankPlace& p = L.ranks[r];
    p.rank = r;
    p.node = topo.node_of[r];
    p.local_rank = topo.local_of[r];
    p.rail = topo.rail_of[r];
    p.tp_rank = r % tp;
    p.cp_coord = (r / tp) % cp;
    p.dp_rank = r / (tp * cp);
    p.a2a_rank = p.cp_coord % U;
  }
  auto world_of = [&](int t, int c, int d) { return t + tp * (c + cp * d); };
  // The R rings: members c = u + U * rc of (t, u, d), in network-aware order.
  for (int d = 0; d < dp; ++d)
    for (int t = 0; t < tp; ++t)
      for (int u = 0; u < U; ++u) {
        std::vector<int> members;
        for (int rc = 0; rc < R; ++rc) members.push_back(world_of(t, u + U * rc, d));
        std::vector<int> ring = ring_order(topo, members, ring_aware);
        for (int i = 0; i < R; ++i) {
          RankPlace& p = L.ranks[ring[i]];
          p.ring_rank = i;
          p.cp_rank = p.a2a_rank + U * i;
          p.cp_next = ring[(i + 1) % R];
          p.cp_prev = ring[(i + R - 1) % R];
        }
        L.cp_rings.push_back(ring);
      }
  // The U groups: members c = u + U * rc of (t, rc, d) for u = 0..U-1 (a2a-rank order).
  for (int d = 0; d < dp; ++d)
    for (int t = 0; t < tp; ++t)
      for (int rc = 0; rc < R; ++rc) {
        std::vector<int> g;
        for (int u = 0; u < U; ++u) g.push_back(world_of(t, u + U * rc, d));
        if (U > 1)
          for (int r : g)
            if (topo.node_of[r] != topo.node_of[g[0]])
              throw InputError(str("the all-to-all group of ranks ", g.front(), "..", g.back(), " (U = ", U,
                                   " of parallel.hierarchical_cp_sizes, parallel.tp = ", tp,
                                   ") spans two nodes: choose U with parallel.tp x U dividing the ranks per node (",
                                   topo.ranks_per_node, ")"));
        L.a2a_groups.push_back(g);
      }
  // The whole cp group of (t, d) in cp_rank order (ZeRO's dp x cp sharding, cp-wide collectives).
  for (int d = 0; d < dp; ++d)
    for (int t = 0; t < tp; ++t) {
      std::vector<int> g(size_t(cp), -1);
      for (int c = 0; c < cp; ++c) {
        const int w = world_of(t, c, d);
        g[size_t(L.ranks[size_t(w)].cp_rank)] = w;
      }
      L.cp_groups.push_back(g);
    }
  for (int d = 0; d < dp; ++d)
    for (int c = 0; c < cp; ++c) {
      std::vector<int> g;
      for (int t = 0; t < tp; ++t) g.push_back(world_of(t, c, d));
      L.tp_groups.push_back(g);
    }
  // dp groups: same tp rank and same cp_rank (sharding index); dp x cp groups: same tp rank,
  // ordered by replica, then the network-aware ring order of the whole cp group (the order its
  // collectives are counted in; with U = 1 that is the ring itself, i.e. cp_rank order).
  for (int t = 0; t < tp; ++t) {
    std::vector<int> dpcp;
    for (int i = 0; i < cp; ++i) {
      std::vector<int> g;
      for (int d = 0; d < dp; ++d) g.push_back(L.cp_groups[size_t(d * tp + t)][size_t(i)]);
      L.dp_groups.push_back(g);
    }
    for (int d = 0; d < dp; ++d) {
      std::vector<int> members;
      for (int c = 0; c < cp; ++c) members.push_back(world_of(t, c, d));
      const std::vector<int> order = U == 1 ? L.cp_groups[size_t(d * tp + t)] : ring_order(topo, members, ring_aware);
      dpcp.insert(dpcp.end(), order.begin(), order.end());
    }
    L.dpcp_groups.push_back(dpcp);
  }
  return L;
}

std::string Layout::cp_comm_type() const {
  if (cp_a2a == 1) return "p2p";
  return cp_ring == 1 ? "a2a" : "a2a+p2p";
}

void check_cp_heads(int64_t n_heads, int64_t n_kv_heads, int tp, int U) {
  if (U <= 1) return;
  const int64_t hq = n_heads / tp, hkv = n_kv_heads / tp;
  const std::string which = str("the all-to-all size U = ", U,
                                " (parallel.cp with parallel.cp_comm_type = a2a, the U of "
                                "parallel.hierarchical_cp_sizes = U,R with a2a+p2p)");
  if (hq % U != 0)
    throw InputError(str(which, " must divide the query heads per tensor-parallel rank, model.n_heads / parallel.tp = ",
                         n_heads, " / ", tp, " = ", hq, ": each all-to-all rank takes Hq / U of them; choose U dividing ",
                         hq));
  if (hkv % U != 0 && U % hkv != 0)
    throw InputError(str(which, " and the K/V heads per tensor-parallel rank, model.n_kv_heads / parallel.tp = ",
                         n_kv_heads, " / ", tp, " = ", hkv,
                         ", must divide one another (K/V heads are split over the U ranks, or each replicated to U / ",
                         "Hkv of them); choose U dividing ", hkv, " or a multiple of it"));
}

std::string kv_replication_note(int64_t n_kv_heads, int tp, int U, int64_t kv_bytes) {
  const int64_t hkv = n_kv_heads / tp;
  if (U <= 1 || U <= hkv) return "";
  const int64_t f = U / hkv;
  // Forward all-to-all of K/V: each rank sends U parts of one head each instead of U parts of
  // Hkv / U heads: f x the bytes. The ring's K/V blocks and the backward's dK/dV grow alike.
  const int64_t sent = kv_bytes * f * (U - 1) / U, plain = kv_bytes * (U - 1) / U;
  return str("K/V heads replicated: model.n_kv_heads / parallel.tp = ", hkv, " < U = ", U, ", each K/V head goes to ",
             f, " ranks of the all-to-all group: every K/V all-to-all (forward, and dK/dV backward) sends ", f,
             "x the K/V bytes (", sent, " instead of ", plain, " bytes per layer and micro-batch per rank, ",
             sent - plain, " more), and the ring's K/V blocks are ", f, "x the size");
}

int Layout::ring_hops(LinkClass c) const {
  int n = 0;
  for (const auto& ring : cp_rings) {
    if (ring.size() < 2) continue;
    for (size_t i = 0; i < ring.size(); ++i)
      if (link_class(topo, ring[i], ring[(i + 1) % ring.size()]) == c) ++n;
  }
  return n;
}

std::string layout_json(const Layout& L) {
  nlohmann::ordered_json j;
  j["world_size"] = L.topo.world_size;
  j["tp"] = L.tp;
  j["cp"] = L.cp;
  j["dp"] = L.dp;
  j["cp_comm_type"] = L.cp_comm_type();
  j["cp_a2a"] = L.cp_a2a;
  j["cp_ring"] = L.cp_ring;
  j["nodes"] = L.topo.num_nodes();
  j["ranks_per_node"] = L.topo.ranks_per_node;
  j["ring_order"] = L.ring_aware ? "aware" : "naive";
  j["ring_hops"] = {{"intra_node", L.ring_hops(LinkClass::IntraNode)},
                    {"same_rail", L.ring_hops(LinkClass::SameRail)},
                    {"cross_rail", L.ring_hops(LinkClass::CrossRail)}};
  j["a2a_groups"] = L.a2a_groups;
  nlohmann::ordered_json ranks = nlohmann::ordered_json::array();
  for (const auto& p : L.ranks)
    ranks.push_back({{"rank", p.rank}, {"node", p.node}, {"local_rank", p.local_rank}, {"rail", p.rail},
                     {"tp_rank", p.tp_rank}, {"cp_rank", p.cp_rank}, {"dp_rank", p.dp_rank},
                     {"cp_prev", p.cp_prev}, {"cp_next", p.cp_next}, {"a2a_rank", p.a2a_rank},
                     {"ring_rank", p.ring_rank}});
  j["ranks"] = ranks;
  return j.dump(1) + "\n";
}

std::string layout_table(const Layout& L) {
  std::ostringstream os;
  const bool a2a = L.cp_a2a > 1;
  os << "layout: " << L.topo.world_size << " ranks on " << L.topo.num_nodes() << " node(s) x " << L.topo.ranks_per_node
     << ", tp=" << L.tp << " cp=" << L.cp << " dp=" << L.dp;
  if (a2a) os << ", cp_comm_type " << L.cp_comm_type() << " (all-to-all U=" << L.cp_a2a << " x ring R=" << L.cp_ring << ")";
  os << ", ring order " << (L.ring_aware ? "aware" : "naive")
     << "; ring hops: " << L.ring_hops(LinkClass::IntraNode) << " intra-node, " << L.ring_hops(LinkClass::SameRail)
     << " same-rail, " << L.ring_hops(LinkClass::CrossRail) << " cross-rail\n";
  if (L.ring_aware && L.ring_hops(LinkClass::CrossRail) > 0)
    os << "  note: " << L.ring_hops(LinkClass::CrossRail)
       << " ring hop(s) cross rails: the nodes of a ring hold different rail sets, so lctrain found no rail-aligned order "
          "and those rings keep rank order (docs/parallel.md); choose cp, tp and ranks_per_node so every "
          "node of a ring holds the same local ranks\n";
  if (a2a) {
    const size_t show_groups = std::min<size_t>(L.a2a_groups.size(), 16);
    os << "  a2a groups (" << L.a2a_groups.size() << ", all inside one node):";
    for (size_t g = 0; g < show_groups; ++g) {
      os << (g ? " " : " ") << "[";
      for (size_t i = 0; i < L.a2a_groups[g].size(); ++i) os << (i ? "," : "") << L.a2a_groups[g][i];
      os << "]";
    }
    if (show_groups < L.a2a_groups.size()) os << " ...";
    os << "\n";
  }
  const size_t show = std::min<size_t>(L.ranks.size(), 64);
  os << "  rank node local rail   tp   cp   dp  cp_prev cp_next" << (a2a ? "  a2a ring" : "") << "\n";
  char buf[160];
  for (size_t i = 0; i < show; ++i) {
    const auto& p = L.ranks[i];
    std::snprintf(buf, sizeof buf, "  %4d %4d %5d %4d %4d %4d %4d %8d %7d", p.rank, p.node, p.local_rank, p.rail,
                  p.tp_rank, p.cp_rank, p.dp_rank, p.cp_prev, p.cp_next);
    os << buf;
    if (a2a) {
      std::snprintf(buf, sizeof buf, " %4d %4d", p.a2a_rank, p.ring_rank);
      os << buf;
    }
    os << "\n";
  }
  if (show < L.ranks.size()) os << "  ... (" << L.ranks.size() - show << " more ranks in layout.json)\n";
  return os.str();
}

}  // namespace lct
