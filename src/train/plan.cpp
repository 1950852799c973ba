#include "train/plan.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "deck/config.h"
#include "model/params.h"
#include "parallel/cluster.h"
#include "parallel/layout.h"
#include "parallel/planner.h"
#include "train/resolve.h"

namespace lct {
namespace {

struct Count {
  int value = 0;
  std::string source;
};

// A positive integer from the start of an environment variable ("8(x64)" -> 8); 0 if unset.
int env_count(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (end == v || x < 1) throw InputError(str("--plan: cannot read a task count from ", name, "='", v, "'"));
  return int(x);
}

Count world_size_from(int given) {
  if (given > 0) return {given, "--world-size"};
  if (int n = env_count("SLURM_NTASKS")) return {n, "SLURM_NTASKS (inside a SLURM allocation)"};
  throw InputError(
      "--plan needs the world size: give --world-size N (and --ranks-per-node R), or run it inside a SLURM "
      "allocation where SLURM_NTASKS is set");
}

Count ranks_per_node_from(int given, const Config& c, const ClusterModel& m, int world) {
  Count r;
  if (given > 0) {
    r = {given, "--ranks-per-node"};
  } else if (c.parallel.ranks_per_node > 0) {
    r = {c.parallel.ranks_per_node, "parallel.ranks_per_node"};
  } else if (int n = env_count("SLURM_NTASKS_PER_NODE")) {
    r = {n, "SLURM_NTASKS_PER_NODE (inside a SLURM allocation)"};
  } else if (int n2 = env_count("SLURM_TASKS_PER_NODE")) {
    r = {n2, "SLURM_TASKS_PER_NODE (inside a SLURM allocation; its first node)"};
  } else {
    r = {std::min(m.gpus_per_node, world), str("cluster preset ", m.preset, " (", m.gpus_per_node, " GPUs per node)")};
  }
  if (world % r.value != 0)
    throw InputError(str("--plan: ", r.value, " ranks per node (", r.source, ") does not divide the world size ", world,
                         "; give --ranks-per-node with a divisor of ", world));
  return r;
}

std::string gib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", bytes / double(int64_t(1) << 30));
  return b;
}

std::string gb(double bytes) {
  char b[32];
  const char* unit[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1000 && u < 5) bytes /= 1000, ++u;
  if (bytes == 0)
    std::snprintf(b, sizeof b, "0");
  else
    std::snprintf(b, sizeof b, "%.4g %s", bytes, unit[u]);
  return b;
}

std::string secs(double s) {
  char b[32];
  if (s == 0)
    std::snprintf(b, sizeof b, "0");
  else if (s < 1e-3)
    std::snprintf(b, sizeof b, "%.1f us", s * 1e6);
  else if (s < 1)
    std::snprintf(b, sizeof b, "%.1f ms", s * 1e3);
  else if (s < 600)
    std::snprintf(b, sizeof b, "%.2f s", s);
  else if (s < 7200)
    std::snprintf(b, sizeof b, "%.1f min", s / 60);
  else
    std::snprintf(b, sizeof b, "%.2f h", s / 3600);
  return b;
}

std::string row(const std::string& label, const std::vector<std::string>& cells, int label_w = 40, int cell_w = 12) {
  char b[64];
  std::string s = "  " + label;
  if (int(s.size()) < label_w) s.append(size_t(label_w) - s.size(), ' ');
  for (const auto& c : cells) {
    std::snprintf(b, sizeof b, "%*s", cell_w, c.c_str());
    s += b;
  }
  return s + "\n";
}

const LinkClass kLinks[3] = {LinkClass::IntraNode, LinkClass::SameRail, LinkClass::CrossRail};

nlohmann::ordered_json link_json(const LinkBytes& b, const std::string& suffix) {
  return {{"bytes_intra_node" + suffix, b[LinkClass::IntraNode]},
          {"bytes_same_rail" + suffix, b[LinkClass::SameRail]},
          {"bytes_cross_rail" + suffix, b[LinkClass::CrossRail]}};
}

// The all-to-all bytes over all ranks and each (source, destination, bytes) as metrics.jsonl
// reports them (bytes_a2a_total, a2a_peers), per optimizer step.
void add_a2a_json(nlohmann::ordered_json& j, const TrafficEstimate& t) {
  int64_t total = 0;
  nlohmann::ordered_json peers = nlohmann::ordered_json::array();
  for (size_t r = 0; r < t.ranks.size(); ++r) {
    total += t.ranks[r].a2a_bytes;
    for (const auto& kv : t.ranks[r].a2a) peers.push_back({int(r), kv.first, kv.second});
  }
  j["bytes_a2a_total"] = total;
  j["a2a_peers"] = peers;
}

struct OrderPlan {
  Layout layout;
  TrafficEstimate traffic;
  TimeEstimate time;
};

OrderPlan plan_order(const Config& c, const Topology& topo, bool aware, const ClusterModel& m) {
  OrderPlan p;
  p.layout = make_layout(topo, c.parallel.tp, c.parallel.cp, c.parallel.dp, aware, c.parallel.cp_a2a);
  p.traffic = estimate_traffic(c, p.layout);
  p.time = estimate_time(c, p.layout, p.traffic, m);
  return p;
}

nlohmann::ordered_json order_json(const OrderPlan& p) {
  nlohmann::ordered_json j;
  const Layout& L = p.layout;
  j["ring_hops"] = {{"intra_node", L.ring_hops(LinkClass::IntraNode)},
                    {"same_rail", L.ring_hops(LinkClass::SameRail)},
                    {"cross_rail", L.ring_hops(LinkClass::CrossRail)}};
  j["per_step"] = link_json(p.traffic.total, "_total");
  add_a2a_json(j["per_step"], p.traffic);
  nlohmann::ordered_json per_rank = nlohmann::ordered_json::array(), pairs = nlohmann::ordered_json::array();
  for (size_t r = 0; r < p.traffic.ranks.size(); ++r) {
    const RankTraffic& rt = p.traffic.ranks[r];
    per_rank.push_back({rt.bytes[LinkClass::IntraNode], rt.bytes[LinkClass::SameRail], rt.bytes[LinkClass::CrossRail]});
    for (const auto& kv : rt.p2p) pairs.push_back({int(r), kv.first});
  }
  j["bytes_per_rank"] = per_rank;  // [intra_node, same_rail, cross_rail] per world rank
  j["p2p_pairs"] = pairs;          // (source, destination) of ring transfers
  j["step_seconds"] = p.time.step_s;
  j["tokens_per_s_per_gpu"] = p.time.tokens_per_s_per_gpu;
  j["mfu"] = p.time.mfu;
  return j;
}

// One stage: prints its figures and returns them as JSON; *layout_out gets the deck-order layout.
nlohmann::ordered_json plan_stage(const Deck& deck, int stage, int nstages, const Count& world, int given_rpn,
                                  std::ostream& out, Layout* layout_out) {
  const Deck d = resolve_run_stage(deck, stage);
  const Config c = config_from_deck(d);
  const ClusterModel m = make_cluster_model(c.cluster);
  const Count rpn = ranks_per_node_from(given_rpn, c, m, world.value);
  const Topology topo = make_topology(world.value, rpn.value, c.parallel.rail_map);
  const bool deck_aware = c.parallel.ring_aware;
  OrderPlan aware = plan_order(c, topo, true, m), naive = plan_order(c, topo, false, m);
  const Layout& L = deck_aware ? aware.layout : naive.layout;
  ParamTable::build(c.model, L.tp, 0);  // the model's own checks (heads, ffn, vocabulary vs tp)
  const LocalShape s = local_shape(c, L.tp, L.cp, L.cp_a2a);
  *layout_out = L;

  const DtypeSizes z = dtype_sizes(c.run.device);
  const int64_t seqs = c.train.micro_batch * c.train.grad_accum * L.dp;
  out << "\n== stage " << stage << " of " << nstages << ": seq_len " << c.train.seq_len << ", rope theta "
      << format_number(c.rope.theta) << ", " << seqs << " sequences per step (micro_batch " << c.train.micro_batch
      << " x grad_accum " << c.train.grad_accum << " x dp " << L.dp << ") = " << seqs * c.train.seq_len
      << " tokens, " << c.train.steps << " steps\n";
  out << "ranks per node: " << rpn.value << " (from " << rpn.source << ")\n";
  out << "tp=" << L.tp << " cp=" << L.cp << " dp=" << L.dp << ", sequence parallel "
      << (s.sp ? "on" : "off") << ", cp sharding " << (c.parallel.zigzag ? "zigzag" : "contiguous") << ", zero "
      << c.parallel.zero << ", recompute " << c.train.recompute << ", device " << c.run.device << " (act "
      << (z.act == 2 ? "bf16" : "f32") << ", acc f32), ring order " << (deck_aware ? "aware" : "naive")
      << " (deck)\n";
  if (s.U > 1)
    out << "context parallelism " << L.cp_comm_type() << ": all-to-all over U = " << s.U << " ranks (inside a node) x ring over R = "
        << s.R << "; inside attention " << s.Na << " tokens x " << s.h << " q / " << s.hk << " kv heads per rank"
        << (s.Hkv < s.U ? str(" (each K/V head replicated on ", s.U / s.Hkv, " ranks)") : std::string()) << "\n";
  out << "per rank: " << s.N << " tokens (" << s.B << " x " << s.Tl << "), residual stream " << s.Ns
      << " tokens, heads " << s.Hq << " q / " << s.Hkv << " kv, ffn " << s.F << ", vocabulary " << s.V
      << "; parameters " << params_per_rank(c.model, L.tp) << " of " << total_params(c.model) << "\n";
  out << layout_table(L);

  out << "\nring hops over all " << L.cp_rings.size() << " cp rings" << std::string(9, ' ') << "   aware   naive\n";
  for (LinkClass k : kLinks)
    out << row(link_class_name(k), {std::to_string(aware.layout.ring_hops(k)), std::to_string(naive.layout.ring_hops(k))},
               40, 8);

  // Memory: one column per ZeRO stage with the deck's recompute and offload; then the deck's own
  // setting with what the backend holds outside its allocations and a 10% margin.
  const MemoryOptions deck_mem = memory_options(c);
  MemoryEstimate mem[4];
  for (int zr = 0; zr < 4; ++zr) {
    MemoryOptions o = deck_mem;
    o.zero = zr;
    mem[zr] = estimate_memory(c, L, o);
  }
  out << "\nmemory per rank (GiB), recompute=" << c.train.recompute << ", offload=" << c.train.offload
      << "\n" << row("", {"zero=0", "zero=1", "zero=2", "zero=3"});
  auto mrow = [&](const std::string& label, const std::function<int64_t(const MemoryEstimate&)>& f) {
    std::vector<std::string> cells;
    for (const MemoryEstimate& e : mem) cells.push_back(gib(double(f(e))));
    out << row(label, cells);
  };
  struct Group {
    const char* key;
    std::string label;
  };
  const std::vector<Group> groups = {
      {"weights", str("weights (", z.act == 2 ? "bf16" : "f32", ")")},
      {"gradients", "gradients (f32)"},
      {"optimizer", c.optim.name == "adamw" ? "optimizer (master, AdamW moments; f32)" : "optimizer (master, momentum; f32)"},
      {"layer_inputs", "layer inputs kept for backward"},
      {"activations", "activations (working set)"},
      {"comm_buffers", "comm buffers (ZeRO reductions)"}};
  for (const Group& g : groups) mrow(g.label, [&](const MemoryEstimate& e) { return e.bytes(g.key); });
  mrow("device total (allocations)", [](const MemoryEstimate& e) { return e.total(); });
  mrow("host (offload)", [](const MemoryEstimate& e) { return e.host_total(); });
  const std::vector<MemoryItem> extra = device_overheads(c, L);
  int64_t overhead = 0;
  for (const MemoryItem& it : extra) overhead += it.count * it.bytes;
  const MemoryEstimate& mine = mem[c.parallel.zero];
  const double cap = m.device_memory_gib * double(int64_t(1) << 30);
  auto verdict = [&](double bytes) {
    return bytes * 1.1 <= cap ? std::string("fits") : bytes <= cap ? std::string("fits only without the 10% margin")
                                                                     : std::string("DOES NOT FIT");
  };
  auto setting = [&](const MemoryOptions& o) {
    return str("zero=", o.zero, ", recompute=", o.recompute ? "layer" : "none", ", offload=",
               o.offload_optimizer ? (o.offload_activations ? "both" : "optimizer")
                                   : (o.offload_activations ? "activations" : "none"));
  };
  const double need = double(mine.total() + overhead);
  out << "  the deck's setting (" << setting(deck_mem) << "): " << gib(double(mine.total())) << " GiB allocated";
  if (!extra.empty()) {
    out << " +";
    for (const MemoryItem& it : extra)
      out << " " << it.name << (it.count != 1 ? str(" x", it.count) : "") << " " << gib(double(it.count * it.bytes))
          << ";";
    out << " = " << gib(need) << " GiB";
  } else {
    out << " (cpu: no backend overheads)";
  }
  out << "; x 1.1 margin = " << gib(1.1 * need) << " GiB of " << m.device_memory_gib << " GiB per device (" << m.preset
      << "): " << verdict(need) << "\n";
  if (mine.host_total() > 0)
    out << "  host memory per rank for the offloaded state: " << gib(double(mine.host_total())) << " GiB\n";
  // What the run would need without each of its memory options.
  std::vector<std::pair<std::string, MemoryOptions>> without;
  if (deck_mem.offload_optimizer || deck_mem.offload_activations) {
    MemoryOptions o = deck_mem;
    o.offload_optimizer = o.offload_activations = false;
    without.emplace_back("without offload", o);
  }
  if (deck_mem.zero > 0) {
    MemoryOptions o = deck_mem;
    o.zero = 0;
    o.offload_optimizer = o.offload_activations = false;
    without.emplace_back("without ZeRO or offload", o);
  }
  for (const auto& [label, o] : without) {
    const double b = double(estimate_memory(c, L, o).total() + overhead);
    out << "  " << label << " (" << setting(o) << "): " << gib(b) << " GiB with the same overheads: " << verdict(b)
        << "\n";
  }
  std::vector<MemoryItem> big;
  for (const MemoryItem& it : mine.items)
    if (!it.host) big.push_back(it);
  std::sort(big.begin(), big.end(), [](const MemoryItem& a, const MemoryItem& b) { return a.count * a.bytes > b.count * b.bytes; });
  out << "  largest:";
  for (size_t i = 0; i < std::min<size_t>(4, big.size()); ++i)
    out << (i ? "; " : " ") << big[i].name << (big[i].count > 1 ? str(" x", big[i].count) : "") << " "
        << gib(double(big[i].count * big[i].bytes)) << " GiB";
  out << "\n";

  // Traffic: mean per rank by source, then the busiest rank and the sum over ranks.
  const double W = world.value;
  out << "\nbytes sent per optimizer step" << std::string(13, ' ') << "|---------- aware ring order ----------|"
      << "---------- naive ring order ----------|\n";
  out << row("(per rank: mean over ranks)", {"intra-node", "same-rail", "cross-rail", "intra-node", "same-rail", "cross-rail"},
             42, 13);
  auto trow = [&](const std::string& label, const LinkBytes& a, const LinkBytes& n, double div) {
    std::vector<std::string> cells;
    for (const LinkBytes* b : {&a, &n})
      for (LinkClass k : kLinks) cells.push_back(gb(double((*b)[k]) / div));
    out << row(label, cells, 42, 13);
  };
  for (int k = 0; k < kTrafficSources; ++k)
    trow(traffic_source_name(TrafficSource(k)), aware.traffic.total_by_source[k], naive.traffic.total_by_source[k], W);
  trow("all sources, per rank", aware.traffic.total, naive.traffic.total, W);
  trow("all sources, busiest rank", aware.traffic.max_rank, naive.traffic.max_rank, 1);
  trow("all sources, summed over ranks", aware.traffic.total, naive.traffic.total, 1);

  // Time.
  out << "\nestimated step time (alpha-beta, " << m.description << ")\n";
  out << row("", {"aware", "naive"}, 40, 14);
  auto srow = [&](const std::string& label, double TimeEstimate::*f) {
    out << row(label, {secs(aware.time.*f), secs(naive.time.*f)}, 40, 14);
  };
  srow("compute", &TimeEstimate::compute_s);
  srow("tp collectives", &TimeEstimate::tp_s);
  srow("ring transfers (if not overlapped)", &TimeEstimate::ring_transfer_s);
  srow("ring transfers not hidden by attention", &TimeEstimate::ring_exposed_s);
  srow("all-to-all (not overlapped)", &TimeEstimate::a2a_s);
  srow("ZeRO collectives (dp x cp, not overlapped)", &TimeEstimate::grad_s);
  srow("step (slowest rank)", &TimeEstimate::step_s);
  char b1[32], b2[32], b3[32], b4[32];
  std::snprintf(b1, sizeof b1, "%.0f", aware.time.tokens_per_s_per_gpu);
  std::snprintf(b2, sizeof b2, "%.0f", naive.time.tokens_per_s_per_gpu);
  std::snprintf(b3, sizeof b3, "%.1f%%", 100 * aware.time.mfu);
  std::snprintf(b4, sizeof b4, "%.1f%%", 100 * naive.time.mfu);
  out << row("tokens/s per GPU", {b1, b2}, 40, 14) << row("MFU (model FLOPs / peak)", {b3, b4}, 40, 14);
  if (c.train.steps > 0)
    out << row(str("stage time (", c.train.steps, " steps)"),
               {secs(aware.time.step_s * double(c.train.steps)), secs(naive.time.step_s * double(c.train.steps))}, 40, 14);
  char fl[256];
  std::snprintf(fl, sizeof fl,
                "model FLOPs per token = 6 x %.4g (matmul params) + 12 x %lld layers x %lld (heads x head_dim) x (T+1)/2 "
                "= %.4g at T = %lld; per step %.4g\n",
                double(matmul_params(c.model)), (long long)c.model.n_layers, (long long)(c.model.n_heads * c.model.head_dim),
                model_flops_per_token(c.model, c.train.seq_len), (long long)c.train.seq_len,
                aware.time.model_flops_per_step);
  out << fl;
  out << "(compute also counts the recomputed forward under recompute=layer and the LM-head logits the loss "
         "recomputes in backward)\n";

  // The context-parallel splits of the same tp x cp ranks: ring only, the hybrid, all-to-all only.
  const std::vector<CpSplit> splits = cp_splits(c, topo, m);
  const int best = recommended_split(splits);
  out << "\ncontext-parallel splits of tp x cp = " << L.tp * L.cp << " ranks (dp " << L.dp
      << " kept; aware ring order; the deck's memory settings; " << m.preset << ")\n";
  out << "    tp    U    R  type       memory GiB   a2a/rank   ring/rank  cross-node/rank      a2a   ring exp.       step\n";
  nlohmann::ordered_json sj = nlohmann::ordered_json::array();
  for (size_t i = 0; i < splits.size(); ++i) {
    const CpSplit& x = splits[i];
    char b[320];
    nlohmann::ordered_json e = {{"tp", x.tp}, {"U", x.U}, {"R", x.R}, {"type", x.type}};
    if (!x.illegal.empty()) {
      std::string why = x.illegal;
      if (why.size() > 90) why = why.substr(0, 87) + "...";
      std::snprintf(b, sizeof b, "  %4d %4d %4d  %-8s   illegal: %s\n", x.tp, x.U, x.R, x.type.c_str(), why.c_str());
      out << b;
      e["illegal"] = x.illegal;
    } else {
      std::snprintf(b, sizeof b, "  %4d %4d %4d  %-8s %8s%s %10s %11s %16s %8s %11s %10s%s\n", x.tp, x.U, x.R, x.type.c_str(),
                    gib(x.memory_bytes).c_str(), x.fits ? "  " : " !", gb(double(x.a2a_bytes)).c_str(),
                    gb(double(x.ring_bytes)).c_str(), gb(double(x.cross_node_bytes)).c_str(), secs(x.time.a2a_s).c_str(),
                    secs(x.time.ring_exposed_s).c_str(), secs(x.time.step_s).c_str(), int(i) == best ? "  <- recommended" : "");
      out << b;
      e["memory_bytes"] = x.memory_bytes;
      e["fits"] = x.fits;
      e["a2a_bytes_per_rank"] = x.a2a_bytes;
      e["ring_bytes_per_rank"] = x.ring_bytes;
      e["cross_node_bytes_per_rank"] = x.cross_node_bytes;
      e["a2a_seconds"] = x.time.a2a_s;
      e["ring_exposed_seconds"] = x.time.ring_exposed_s;
      e["step_seconds"] = x.time.step_s;
    }
    sj.push_back(e);
  }
  out << "  (per rank: the busiest rank's bytes per step; ! = does not fit with the 10% margin; memory = "
         "allocations + backend overheads)\n";
  if (best >= 0) {
    const CpSplit& x = splits[size_t(best)];
    out << "recommended (the fastest split that fits): tp " << x.tp << ", " << x.type << " U = " << x.U << " x R = " << x.R
        << ", predicted step " << secs(x.time.step_s) << " (the deck's: " << secs((deck_aware ? aware : naive).time.step_s)
        << "); deck keys: --parallel.tp=" << x.tp << " --parallel.cp=" << x.U * x.R << " --parallel.cp_comm_type=" << x.type;
    if (x.U > 1 && x.R > 1) out << " --parallel.hierarchical_cp_sizes=" << x.U << "," << x.R;
    out << "\n";
  } else {
    out << "recommended: none of these splits fits the device with the 10% margin (see the memory table: "
           "recompute, ZeRO or offload)\n";
  }

  nlohmann::ordered_json j;
  j["stage"] = stage;
  j["seq_len"] = c.train.seq_len;
  j["world_size"] = world.value;
  j["ranks_per_node"] = rpn.value;
  j["tp"] = L.tp;
  j["cp"] = L.cp;
  j["dp"] = L.dp;
  j["zero"] = c.parallel.zero;
  j["recompute"] = c.train.recompute;
  j["ring_order"] = deck_aware ? "aware" : "naive";
  nlohmann::ordered_json mj, hj;
  for (const Group& g : groups) {
    mj[g.key] = mine.bytes(g.key);
    hj[g.key] = mine.host_bytes(g.key);
  }
  mj["total"] = mine.total();
  hj["total"] = mine.host_total();
  j["offload"] = c.train.offload;
  j["memory_bytes"] = mj;             // device allocations, by the ledger's categories
  j["host_memory_bytes"] = hj;        // the offload pool
  j["device_overhead_bytes"] = overhead;
  j["device_needed_bytes"] = int64_t(need);  // allocations + overheads (the margin not included)
  j["fits"] = need * 1.1 <= cap;
  j["predicted"] = link_json((deck_aware ? aware : naive).traffic.total, "_total");
  add_a2a_json(j["predicted"], (deck_aware ? aware : naive).traffic);
  j["cp_splits"] = sj;
  j["recommended_split"] = best >= 0 ? nlohmann::ordered_json(best) : nlohmann::ordered_json(nullptr);
  j["aware"] = order_json(aware);
  j["naive"] = order_json(naive);
  return j;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) throw InputError(str("--plan: cannot write ", path, " (run.out_dir)"));
}

}  // namespace

int run_plan(const Deck& deck, int world_size, int ranks_per_node, std::ostream& out, int only_stage) {
  const Count world = world_size_from(world_size);
  const int n = deck.num_stages();
  if (only_stage > n) throw InputError(str("--stage ", only_stage, " but the deck defines ", n, " stage(s)"));
  const Deck first = resolve_run_stage(deck, 1);
  const std::string out_dir = first.get("run.out_dir");
  out << "lctrain --plan: " << world.value << " ranks (from " << world.source << "); machine model "
      << make_cluster_model(config_from_deck(first).cluster).description << "\n";
  nlohmann::ordered_json stages = nlohmann::ordered_json::array();
  Layout last;
  std::vector<std::pair<int, Layout>> layouts;
  for (int s = only_stage > 0 ? only_stage : 1; s <= (only_stage > 0 ? only_stage : n); ++s) {
    stages.push_back(plan_stage(deck, s, n, world, ranks_per_node, out, &last));
    layouts.emplace_back(s, last);
  }
  std::error_code ec;
  // A run's folder keeps the layout.json its trainer wrote: there the plan writes into plan/.
  std::string plan_dir = out_dir;
  for (const char* mark : {"/metrics.jsonl", "/checkpoints"})
    if (std::filesystem::exists(out_dir + mark, ec)) plan_dir = out_dir + "/plan";
  std::filesystem::create_directories(plan_dir, ec);
  if (ec) throw InputError(str("cannot create '", plan_dir, "': ", ec.message()));
  // As the trainer leaves it: layout.json of the last stage run; per-stage copies when there are several.
  write_file(plan_dir + "/layout.json", layout_json(last));
  if (layouts.size() > 1)
    for (const auto& kv : layouts) write_file(str(plan_dir, "/layout-stage", kv.first, ".json"), layout_json(kv.second));
  nlohmann::ordered_json j;
  j["world_size"] = world.value;
  j["stages"] = stages;
  write_file(plan_dir + "/plan.json", j.dump(1) + "\n");
  if (plan_dir != out_dir) out << "\n" << out_dir << " holds a run: its layout.json stays, the plan's files go to " << plan_dir;
  out << "\nwrote " << plan_dir << "/layout.json" << (layouts.size() > 1 ? " (last stage; layout-stageN.json each)" : "")
      << " and " << plan_dir << "/plan.json\n";
  return kExitOk;
}

}  // namespace lct
