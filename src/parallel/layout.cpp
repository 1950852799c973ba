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

Layout make_layout(const Topology& topo, int tp, int cp, int dp, bool ring_aware) {
  const int W = topo.world_size;
  if (tp < 1 || cp < 1) throw InputError("parallel.tp and parallel.cp must be >= 1");
  if (W % (tp * cp) != 0)
    throw InputError(str("parallel.tp * parallel.cp = ", tp, " * ", cp, " = ", tp * cp,
                         " does not divide the world size ", W, "; choose tp and cp whose product divides ", W));
  if (dp == 0) dp = W / (tp * cp);
  if (tp * cp * dp != W)
    throw InputError(str("parallel.tp * cp * dp = ", tp, " * ", cp, " * ", dp, " = ", tp * cp * dp,
                         " but the job has ", W, " ranks; set parallel.dp = auto or ", W / (tp * cp)));
  if (topo.ranks_per_node % tp != 0 && tp > 1)
    throw InputError(str("parallel.tp = ", tp, " does not divide the ranks per node (", topo.ranks_per_node,
                         "): a tensor-parallel group must sit inside one node; choose tp dividing ",
                         topo.ranks_per_node));
  Layout L;
  L.tp = tp;
  L.cp = cp;
  L.dp = dp;
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
  }
  for (int d = 0; d < dp; ++d)
    for (int t = 0; t < tp; ++t) {
      std::vector<int> members;
      for (int c = 0; c < cp; ++c) members.push_back(t + tp * (c + cp * d));
      std::vector<int> ring = ring_order(topo, members, ring_aware);
      for (int i = 0; i < cp; ++i) {
        RankPlace& p = L.ranks[ring[i]];
        p.cp_rank = i;
        p.cp_next = ring[(i + 1) % cp];
        p.cp_prev = ring[(i + cp - 1) % cp];
      }
      L.cp_rings.push_back(ring);
    }
  for (int d = 0; d < dp; ++d)
    for (int c = 0; c < cp; ++c) {
      std::vector<int> g;
      for (int t = 0; t < tp; ++t) g.push_back(t + tp * (c + cp * d));
      L.tp_groups.push_back(g);
    }
  // dp groups: same tp rank and same ring position; dp x cp groups: same tp rank.
  for (int t = 0; t < tp; ++t) {
    std::vector<int> dpcp;
    for (int i = 0; i < cp; ++i) {
      std::vector<int> g;
      for (int d = 0; d < dp; ++d) g.push_back(L.cp_rings[size_t(d * tp + t)][i]);
      L.dp_groups.push_back(g);
    }
    for (int d = 0; d < dp; ++d)
      for (int i = 0; i < cp; ++i) dpcp.push_back(L.cp_rings[size_t(d * tp + t)][i]);
    L.dpcp_groups.push_back(dpcp);
  }
  return L;
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
  j["nodes"] = L.topo.num_nodes();
  j["ranks_per_node"] = L.topo.ranks_per_node;
  j["ring_order"] = L.ring_aware ? "aware" : "naive";
  j["ring_hops"] = {{"intra_node", L.ring_hops(LinkClass::IntraNode)},
                    {"same_rail", L.ring_hops(LinkClass::SameRail)},
                    {"cross_rail", L.ring_hops(LinkClass::CrossRail)}};
  nlohmann::ordered_json ranks = nlohmann::ordered_json::array();
  for (const auto& p : L.ranks)
    ranks.push_back({{"rank", p.rank}, {"node", p.node}, {"local_rank", p.local_rank}, {"rail", p.rail},
                     {"tp_rank", p.tp_rank}, {"cp_rank", p.cp_rank}, {"dp_rank", p.dp_rank},
                     {"cp_prev", p.cp_prev}, {"cp_next", p.cp_next}});
  j["ranks"] = ranks;
  return j.dump(1) + "\n";
}

std::string layout_table(const Layout& L) {
  std::ostringstream os;
  os << "layout: " << L.topo.world_size << " ranks on " << L.topo.num_nodes() << " node(s) x " << L.topo.ranks_per_node
     << ", tp=" << L.tp << " cp=" << L.cp << " dp=" << L.dp << ", ring order " << (L.ring_aware ? "aware" : "naive")
     << "; ring hops: " << L.ring_hops(LinkClass::IntraNode) << " intra-node, " << L.ring_hops(LinkClass::SameRail)
     << " same-rail, " << L.ring_hops(LinkClass::CrossRail) << " cross-rail\n";
  if (L.ring_aware && L.ring_hops(LinkClass::CrossRail) > 0)
    os << "  note: " << L.ring_hops(LinkClass::CrossRail)
       << " ring hop(s) cross rails: the nodes of a ring hold different rail sets, so lctrain found no rail-aligned order "
          "and those rings keep rank order (docs/parallel.md); choose cp, tp and ranks_per_node so every "
          "node of a ring holds the same local ranks\n";
  const size_t show = std::min<size_t>(L.ranks.size(), 64);
  os << "  rank node local rail   tp   cp   dp  cp_prev cp_next\n";
  char buf[128];
  for (size_t i = 0; i < show; ++i) {
    const auto& p = L.ranks[i];
    std::snprintf(buf, sizeof buf, "  %4d %4d %5d %4d %4d %4d %4d %8d %7d\n", p.rank, p.node, p.local_rank, p.rail,
                  p.tp_rank, p.cp_rank, p.dp_rank, p.cp_prev, p.cp_next);
    os << buf;
  }
  if (show < L.ranks.size()) os << "  ... (" << L.ranks.size() - show << " more ranks in layout.json)\n";
  return os.str();
}

}  // namespace lct
