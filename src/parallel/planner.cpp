#include "parallel/planner.h"

#include <algorithm>

#include "core/error.h"

namespace lct {

DtypeSizes dtype_sizes(const std::string& device) {
  DtypeSizes s;
  if (device == "cuda") s.act = 2;  // bf16 compute, f32 accumulators
  return s;
}

LocalShape local_shape(const Config& c, int tp, int cp, int cp_a2a) {
  const ModelConfig& m = c.model;
  // The checks of ParamTable::build and the Llama constructor, with their messages.
  if (m.n_heads % tp || m.n_kv_heads % tp)
    throw InputError(str("parallel.tp = ", tp, " must divide model.n_heads = ", m.n_heads, " and model.n_kv_heads = ",
                         m.n_kv_heads, " (attention heads are split over tensor-parallel ranks)"));
  if (m.ffn_dim % tp) throw InputError(str("parallel.tp = ", tp, " must divide model.ffn_dim = ", m.ffn_dim));
  const bool zz = c.parallel.zigzag && cp > 1;
  const int64_t T = c.train.seq_len;
  if (T % (zz ? 2 * cp : cp) != 0)
    throw InputError(str("train.seq_len = ", T, " must be divisible by ", zz ? 2 * cp : cp,
                         (zz ? " (2 * parallel.cp: zigzag sharding cuts the sequence into 2*cp chunks)"
                             : " (parallel.cp)")));
  if ((c.train.offload == "activations" || c.train.offload == "both") && c.train.recompute != "layer")
    throw InputError(str("train.offload = ", c.train.offload, " moves the layer inputs that train.recompute = layer keeps "
                         "to host memory, but train.recompute = ", c.train.recompute,
                         "; set train.recompute = layer, or train.offload = optimizer or none"));
  LocalShape s;
  s.tp = tp;
  s.cp = cp;
  s.B = c.train.micro_batch;
  s.T = T;
  s.Tl = T / cp;
  s.N = s.B * s.Tl;
  s.sp = tp > 1 && c.parallel.sequence_parallel;
  if (s.sp && s.N % tp != 0)
    throw InputError(str("with sequence parallelism, the tokens per rank (micro_batch * seq_len / cp = ", s.N,
                         ") must be divisible by parallel.tp = ", tp,
                         "; change seq_len or set parallel.sequence_parallel = false"));
  s.Ns = s.sp ? s.N / tp : s.N;
  s.C = m.dim;
  s.D = m.head_dim;
  s.Hq = m.n_heads / tp;
  s.Hkv = m.n_kv_heads / tp;
  s.F = m.ffn_dim / tp;
  s.V = vocab_padded_rows_per_rank(m, tp);  // the LM-head GEMMs run over the padded slice
  s.L = m.n_layers;
  if (cp_a2a < 1 || cp % cp_a2a)
    throw InputError(str("parallel.hierarchical_cp_sizes: the all-to-all size ", cp_a2a, " must divide parallel.cp = ", cp));
  check_cp_heads(m.n_heads, m.n_kv_heads, tp, cp_a2a);
  s.U = cp_a2a;
  s.R = cp / cp_a2a;
  s.Na = s.N * s.U;
  s.h = s.Hq / s.U;
  s.hk = std::max<int64_t>(s.Hkv / s.U, 1);
  return s;
}

int64_t params_per_rank(const ModelConfig& m, int tp) {
  const int64_t C = m.dim, D = m.head_dim;
  const int64_t layer = 2 * C + (m.n_heads * D * C + 2 * m.n_kv_heads * D * C + C * m.n_heads * D) / tp +
                        3 * m.ffn_dim * C / tp;
  return vocab_padded_rows_per_rank(m, tp) * C * (m.tie_embeddings ? 1 : 2) + m.n_layers * layer + C;
}

int64_t total_params(const ModelConfig& m) {
  ModelConfig unpadded = m;
  unpadded.make_vocab_size_divisible_by = 1;
  return params_per_rank(unpadded, 1);
}

int64_t matmul_params(const ModelConfig& m) {
  const int64_t C = m.dim, D = m.head_dim;
  return m.n_layers * (2 * m.n_heads * D * C + 2 * m.n_kv_heads * D * C + 3 * m.ffn_dim * C) + m.vocab_size * C;
}

// ---- memory ------------------------------------------------------------------------------------

int64_t MemoryEstimate::bytes(const std::string& group) const {
  int64_t n = 0;
  for (const auto& it : items)
    if (it.group == group && !it.host) n += it.count * it.bytes;
  return n;
}

int64_t MemoryEstimate::host_bytes(const std::string& group) const {
  int64_t n = 0;
  for (const auto& it : items)
    if (it.group == group && it.host) n += it.count * it.bytes;
  return n;
}

int64_t MemoryEstimate::total() const {
  int64_t n = 0;
  for (const auto& it : items)
    if (!it.host) n += it.count * it.bytes;
  return n;
}

int64_t MemoryEstimate::host_total() const {
  int64_t n = 0;
  for (const auto& it : items)
    if (it.host) n += it.count * it.bytes;
  return n;
}

MemoryOptions memory_options(const Config& c) {
  MemoryOptions o;
  o.recompute = c.train.recompute == "layer";
  o.zero = c.parallel.zero;
  o.offload_optimizer = c.train.offload == "optimizer" || c.train.offload == "both";
  o.offload_activations = c.train.offload == "activations" || c.train.offload == "both";
  return o;
}

UnitSizes unit_sizes(const ModelConfig& m, int tp, int64_t padding) {
  const int64_t C = m.dim, D = m.head_dim, V = vocab_padded_rows_per_rank(m, tp), pad = std::max<int64_t>(1, padding);
  auto padded = [&](int64_t n) { return (n + pad - 1) / pad * pad; };
  UnitSizes u;
  u.embed = padded(V * C);
  u.layer = padded(2 * C + (m.n_heads * D * C + 2 * m.n_kv_heads * D * C + C * m.n_heads * D) / tp +
                   3 * m.ffn_dim * C / tp);
  u.head = padded(C + (m.tie_embeddings ? 0 : V * C));
  u.total = u.embed + m.n_layers * u.layer + u.head;
  return u;
}

MemoryEstimate estimate_memory(const Config& c, const Layout& L, const MemoryOptions& o) {
  const LocalShape s = local_shape(c, L.tp, L.cp, L.cp_a2a);
  const DtypeSizes z = dtype_sizes(c.run.device);
  const int64_t act = z.act, acc = z.acc, i32 = 4;
  const int P = L.dp * L.cp, zero = o.zero;
  const int parts = zero >= 1 ? P : 1;  // the shard layout (optim/shard_layout.h)
  const UnitSizes u = unit_sizes(c.model, L.tp, parts);
  const int64_t cap = u.total, shard = cap / parts;
  const bool mixed = act != acc;
  const int64_t N = s.N, C = s.C;
  MemoryEstimate e;
  auto add = [&](const char* group, std::string name, int64_t bytes, int64_t count = 1, bool host = false) {
    if (count > 0) e.items.push_back({group, std::move(name), count, bytes, host});
  };
  // The ZeRO store (optim/zero_params.cpp): weights, gradients and their pools. A pool holds what
  // the unit order needs at once: the embedding and head units once, layers twice (the one in use
  // and the one prefetched, or the one whose reduction is in flight).
  const int64_t pooled_layers = std::min<int64_t>(s.L, parts > 1 ? 2 : 1);
  if (zero <= 2) {
    add("weights", "parameters (flat, act dtype)", cap * act);
  } else {
    add("weights", "parameter shard (act dtype)", shard * act);
    if (parts > 1) {
      add("weights", "gathered embedding unit", u.embed * act);
      add("weights", "gathered layer units (in use, prefetched)", u.layer * act, std::min<int64_t>(s.L, 2));
      add("weights", "gathered final norm + LM head unit", u.head * act);
    }
  }
  if (zero <= 1) {
    add("gradients", "gradients (flat, acc dtype)", cap * acc);
    if (parts > 1) add("gradients", "reduce-scattered gradient shard", shard * acc);
  } else {
    add("gradients", "gradient shard (accumulates over micro-batches)", shard * acc);
    add("gradients", "embedding unit gradients", u.embed * acc);
    add("gradients", "layer unit gradients (in backward, in reduction)", u.layer * acc, pooled_layers);
    add("gradients", "final norm + LM head unit gradients", u.head * acc);
    if (parts > 1) {
      add("comm_buffers", "reduce-scatter result, embedding", u.embed / parts * acc);
      add("comm_buffers", "reduce-scatter results, layers", u.layer / parts * acc, pooled_layers);
      add("comm_buffers", "reduce-scatter result, final norm + LM head", u.head / parts * acc);
    }
  }
  // Llama's constructor, in its order. Attention (context_attention.h): with U > 1 the head-layout
  // buffers and the all-to-all staging, then the ring over R with Na tokens, h and hk heads.
  const int64_t NsC = s.Ns * C, fullNC = N * C;
  const int64_t NQ = N * s.Hq * s.D, NKV = 2 * N * s.Hkv * s.D, NF = N * s.F;
  const int64_t Na = s.Na, NaQ = Na * s.h * s.D, NaKV = 2 * Na * s.hk * s.D;
  if (s.U > 1) {
    add("activations", "all-to-all: head-layout q, dout (act)", NaQ * act, 2);
    add("activations", "all-to-all: head-layout k, v (act)", NaKV * act);
    add("activations", "all-to-all: head-layout out, dq (acc)", NaQ * acc, 2);
    add("activations", "all-to-all: head-layout dk, dv (acc)", NaKV * acc);
    add("activations", "all-to-all: send, receive staging", std::max(NQ, 2 * N * s.U * s.hk * s.D) * acc, 2);
  }
  add("activations", "ring: query positions, document starts", Na * i32, 2);
  add("activations", "ring: key positions of every ring position", s.R * Na * i32);
  if (s.R > 1) {
    add("activations", "ring: K/V receive buffers", NaKV * act, 2);
    add("activations", "ring: partial output", NaQ * acc);
    add("activations", "ring: partial log-sum-exp", Na * s.h * acc);
    add("activations", "ring: dK/dV travelling accumulators", NaKV * acc, 2);
  }
  add("activations", "ring: dK/dV of one block", NaKV * acc);
  add("activations", "tokens, targets", N * i32, 2);
  add("activations", "RoPE cos, sin (one table per sequence)", N * (s.D / 2) * acc, 2);
  // model/layer_inputs.cpp: x_0 .. x_L, or two device slots and x_0 .. x_{L-2} on the host.
  if (o.offload_activations) {
    add("layer_inputs", "layer inputs: two device slots", NsC * act, 2);
    add("layer_inputs", "layer inputs x_0 .. x_{L-2} (host)", NsC * act, std::max<int64_t>(0, s.L - 1), true);
  } else {
    add("layer_inputs", "residual stream per layer boundary", NsC * act, s.L + 1);
  }
  const int64_t layers = o.recompute ? 1 : s.L;
  // alloc_layer_acts, once per layer (once in all under recompute)
  add("activations", "layer: ln1, x_mid, ln2", NsC * act, 3 * layers);
  add("activations", "layer: rstd1, rstd2", s.Ns * acc, 2 * layers);
  add("activations", "layer: q", NQ * act, layers);
  add("activations", "layer: k, v", NKV * act, layers);
  add("activations", "layer: attention output (acc)", NQ * acc, layers);
  if (mixed) add("activations", "layer: attention output (act)", NQ * act, layers);
  add("activations", "layer: log-sum-exp", N * s.Hq * acc, layers);
  add("activations", "layer: gate, up, h", NF * act, 3 * layers);
  add("activations", "final norm output", NsC * act);
  add("activations", "final norm rstd", s.Ns * acc);
  if (s.sp) add("activations", "final norm output gathered", fullNC * act);
  add("activations", "LM-head statistics", N * 3 * acc);
  if (s.tp > 1) add("activations", "LM-head statistics gathered", int64_t(s.tp) * N * 3 * acc);
  add("activations", "LM-head log-sum-exp", N * acc);
  if (s.sp) {
    add("activations", "sequence-parallel gather buffer", fullNC * act);
    add("activations", "sequence-parallel reduce buffer", NsC * act);
  }
  add("activations", "partial sums [N, C]", fullNC * act);
  add("activations", "backward: d residual", NsC * act);
  add("activations", "backward: dh, dgate, dup", NF * act, 3);
  add("activations", "backward: partial sums [N, C]", fullNC * act);
  add("activations", "backward: d attention output", NQ * act);
  add("activations", "backward: dq (acc)", NQ * acc);
  add("activations", "backward: dk, dv (acc)", NKV * acc);
  if (mixed) {
    add("activations", "backward: dq (act)", NQ * act);
    add("activations", "backward: dk, dv (act)", NKV * act);
  }
  // The optimizer (optim/optimizer.cpp): master weights (unless the fp32 weights are them) and
  // moments over the shard, on the host when offloading, with the host's copies of the reduced
  // gradients and of the new act-dtype weights.
  const bool host = o.offload_optimizer;
  if (mixed || host) add("optimizer", "master weights (acc)", shard * acc, 1, host);
  add("optimizer", "first moment", shard * acc, 1, host);
  if (c.optim.name == "adamw") add("optimizer", "second moment", shard * acc, 1, host);
  if (host) {
    add("gradients", "reduced gradient shard (host copy)", shard * acc, 1, true);
    add("weights", "updated weights on their way back (act dtype)", shard * act, 1, true);
  }
  return e;
}

std::vector<MemoryItem> device_overheads(const Config& c, const Layout& L) {
  std::vector<MemoryItem> v;
  if (c.run.device != "cuda") return v;
  const LocalShape s = local_shape(c, L.tp, L.cp, L.cp_a2a);
  const int64_t MiB = int64_t(1) << 20;
  v.push_back({"overhead", "CUDA context, kernels, cuBLASLt handles (assumed)", 1, 768 * MiB, false});
  int comms = 0;
  for (int n : {L.tp, L.cp, L.dp, L.dp * L.cp})
    if (n > 1 && c.parallel.device_comm == "nccl") ++comms;
  // NCCL_BUFFSIZE (4 MiB) x send/recv x up to 32 channels per communicator (NVLS off).
  v.push_back({"overhead", "NCCL buffers per communicator (assumed)", comms, 256 * MiB, false});
  v.push_back({"overhead", "cuBLASLt workspace", 1, 32 * MiB, false});
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(s.N, (int64_t(1) << 25) / std::max<int64_t>(s.V, 1)));
  v.push_back({"overhead", "LM-head logits tiles (f32 + bf16)", 1, rows * s.V * 6, false});
  v.push_back({"overhead", "attention backward scratch (delta)", 1, s.B * s.Hq * s.Tl * 4, false});
  return v;
}

// ---- traffic -----------------------------------------------------------------------------------

const char* traffic_source_name(TrafficSource s) {
  switch (s) {
    case TrafficSource::Ring: return "ring attention (cp)";
    case TrafficSource::TensorParallel: return "tensor parallel (tp)";
    case TrafficSource::Gradients: return "gradients (dp x cp)";
    case TrafficSource::Weights: return "weight gathers (dp x cp)";
    case TrafficSource::AllToAll: return "all-to-all (cp heads)";
  }
  return "?";
}

LinkBytes& LinkBytes::operator+=(const LinkBytes& o) {
  for (int i = 0; i < 4; ++i) by_class[i] += o.by_class[i];
  return *this;
}

bool LinkBytes::operator==(const LinkBytes& o) const {
  return std::equal(by_class, by_class + 4, o.by_class);
}

namespace {

// A communicator as MpiComm sees it: its members in rank order, the next member of each rank
// (count_ring sends there) and the slowest hop of the whole ring.
struct GroupHop {
  int size = 1, next = 0;
  LinkClass bottleneck = LinkClass::Self;
};

std::vector<GroupHop> group_hops(const Topology& topo, const std::vector<std::vector<int>>& groups) {
  std::vector<GroupHop> out(size_t(topo.world_size));
  for (const auto& g : groups) {
    LinkClass worst = LinkClass::Self;
    const size_t n = g.size();
    for (size_t i = 0; i < n && n > 1; ++i) worst = std::max(worst, link_class(topo, g[i], g[(i + 1) % n]));
    for (size_t i = 0; i < n; ++i) out[size_t(g[i])] = {int(n), g[(i + 1) % n], worst};
  }
  return out;
}

// Bytes MpiComm::count_ring records for one call.
int64_t all_reduce_bytes(int64_t bytes, int P) { return 2 * bytes * (P - 1) / P; }
int64_t scatter_gather_bytes(int64_t bytes, int P) { return bytes * (P - 1) / P; }

}  // namespace

TrafficEstimate estimate_traffic(const Config& c, const Layout& L) {
  const LocalShape s = local_shape(c, L.tp, L.cp, L.cp_a2a);
  const DtypeSizes z = dtype_sizes(c.run.device);
  const Topology& topo = L.topo;
  const int W = topo.world_size, tp = L.tp, P = L.dp * L.cp, zero = c.parallel.zero;
  const int64_t accum = c.train.grad_accum, nl = s.L;
  const int64_t rc = c.train.recompute == "layer" ? 1 : 0;
  const std::vector<GroupHop> tph = group_hops(topo, L.tp_groups), cph = group_hops(topo, L.cp_rings),
                              dpcph = group_hops(topo, L.dpcp_groups);
  const int64_t NC = s.N * s.C * z.act;  // an [N, C] activation tensor
  // The ring's blocks: this ring position's Na tokens, hk K/V heads (U = 1: N, Hkv).
  const int64_t kv = 2 * s.Na * s.hk * s.D * z.act, dkv = 2 * s.Na * s.hk * s.D * z.acc;
  const int R = s.R;
  // All-to-all parts (context_attention.h): what one call sends each other member of the U group.
  const int64_t part_q = s.B * s.Tl * s.h * s.D, part_kv = 2 * s.B * s.Tl * s.hk * s.D;
  std::vector<int> a2a_group_of(size_t(W), -1);
  for (size_t g = 0; g < L.a2a_groups.size(); ++g)
    for (int w : L.a2a_groups[g]) a2a_group_of[size_t(w)] = int(g);

  TrafficEstimate est;
  est.ranks.resize(size_t(W));
  for (int r = 0; r < W; ++r) {
    RankTraffic& rt = est.ranks[size_t(r)];
    auto add = [&](TrafficSource src, std::string what, const GroupHop& g, int messages, int64_t calls,
                   int64_t bytes) {
      if (calls == 0 || g.size < 2) return;
      Transfer t;
      t.source = src;
      t.what = std::move(what);
      t.group_size = g.size;
      t.messages = messages;
      t.calls = calls;
      t.bytes = bytes;
      t.dst = g.next;
      t.link = link_class(topo, r, g.next);
      t.bottleneck = g.bottleneck;
      rt.transfers.push_back(t);
    };
    // Tensor parallelism, per micro-batch (Llama::forward_backward): with sequence parallelism
    // an all-gather before and a reduce-scatter after each tp block; without, an all-reduce after.
    const GroupHop& tg = tph[size_t(r)];
    if (tp > 1) {
      const int64_t gathers = 6 * nl + 2 + 2 * nl * rc, reduces = 4 * nl + 2 + 2 * nl * rc;
      if (s.sp) {
        add(TrafficSource::TensorParallel, "tp all-gather [N, C]", tg, tp - 1, accum * gathers,
            scatter_gather_bytes(NC, tp));
        add(TrafficSource::TensorParallel, "tp reduce-scatter [N, C]", tg, tp - 1, accum * reduces,
            scatter_gather_bytes(NC, tp));
      } else {
        add(TrafficSource::TensorParallel, "tp all-reduce [N, C]", tg, 2 * (tp - 1), accum * reduces,
            all_reduce_bytes(NC, tp));
      }
      add(TrafficSource::TensorParallel, "tp all-gather LM-head statistics [tp, N, 3]", tg, tp - 1, accum,
          scatter_gather_bytes(int64_t(tp) * s.N * 3 * z.acc, tp));
      // Norm-weight gradients, one call each: at the step (zero 0, 1), per micro-batch (zero 2, 3).
      if (c.parallel.sequence_parallel)
        add(TrafficSource::TensorParallel, "tp all-reduce norm-weight gradients [C]", tg, 2 * (tp - 1),
            (zero >= 2 ? accum : 1) * (2 * nl + 1), all_reduce_bytes(s.C * z.acc, tp));
    }
    // Ring attention over the R ring, per layer and micro-batch: R - 1 K/V blocks forward (again
    // under recompute) and backward, and R dK/dV accumulators backward, all to cp_next.
    const GroupHop& rg = cph[size_t(r)];
    add(TrafficSource::Ring, "ring K/V block", rg, 1, accum * nl * (R - 1) * (2 + rc), kv);
    add(TrafficSource::Ring, "ring dK/dV accumulator", rg, 1, accum * nl * R, dkv);
    // All-to-all over the U group, per layer and micro-batch: q, K/V and out forward (again in
    // backward, and in the recompute), dout, dq and dK/dV backward; one part to each other member.
    if (s.U > 1) {
      const std::vector<int>& members = L.a2a_groups[size_t(a2a_group_of[size_t(r)])];
      const int64_t f = accum * nl * (2 + rc), b = accum * nl;
      for (int peer : members) {
        if (peer == r) continue;
        const GroupHop g{s.U, peer, LinkClass::Self};
        auto a2a = [&](const char* what, int64_t calls, int64_t bytes) {
          add(TrafficSource::AllToAll, what, g, 1, calls, bytes);
          rt.transfers.back().bottleneck = link_class(topo, r, peer);
        };
        a2a("all-to-all q (act)", f, part_q * z.act);
        a2a("all-to-all K/V (act)", f, part_kv * z.act);
        a2a("all-to-all out (acc)", f, part_q * z.acc);
        a2a("all-to-all dout (act)", b, part_q * z.act);
        a2a("all-to-all dq (acc)", b, part_q * z.acc);
        a2a("all-to-all dK/dV (acc)", b, part_kv * z.acc);
      }
    }
    // ZeRO over dp x cp (optim/zero_params.cpp), one collective per unit where sharded: the
    // embedding, each layer, the final norm + LM head.
    const GroupHop& dg = dpcph[size_t(r)];
    const UnitSizes u = unit_sizes(c.model, tp, zero >= 1 ? P : 1);
    auto per_unit = [&](TrafficSource src, const std::string& what, int64_t calls_per_unit, int64_t layer_calls,
                        int64_t dsize) {
      add(src, what + " (embedding)", dg, P - 1, calls_per_unit, scatter_gather_bytes(u.embed * dsize, P));
      add(src, what + " (layers)", dg, P - 1, layer_calls, scatter_gather_bytes(u.layer * dsize, P));
      add(src, what + " (final norm + LM head)", dg, P - 1, calls_per_unit, scatter_gather_bytes(u.head * dsize, P));
    };
    if (zero == 0) {
      add(TrafficSource::Gradients, "dp x cp all-reduce of gradients", dg, 2 * (P - 1), 1,
          all_reduce_bytes(u.total * z.acc, P));
    } else if (zero == 1) {  // at the step
      per_unit(TrafficSource::Gradients, "dp x cp reduce-scatter of gradients", 1, nl, z.acc);
      per_unit(TrafficSource::Weights, "dp x cp all-gather of weights", 1, nl, z.act);
    } else {  // each unit's gradients as its backward ends, every micro-batch
      per_unit(TrafficSource::Gradients, "dp x cp reduce-scatter of gradients", accum, accum * nl, z.acc);
      if (zero == 2)  // the updated shard, at the step
        per_unit(TrafficSource::Weights, "dp x cp all-gather of weights", 1, nl, z.act);
      else  // before each unit's forward and each layer's backward (the head is kept between them)
        per_unit(TrafficSource::Weights, "dp x cp all-gather of weights", accum, accum * 2 * nl, z.act);
    }
    for (const Transfer& t : rt.transfers) {
      const int64_t b = t.calls * t.bytes;
      rt.bytes[t.link] += b;
      rt.by_source[int(t.source)][t.link] += b;
      if (t.source == TrafficSource::Ring) {
        rt.p2p[t.dst] += b;
        rt.p2p_messages += t.calls;
      }
      if (t.source == TrafficSource::AllToAll) {
        rt.a2a[t.dst] += b;
        rt.a2a_bytes += b;
      }
    }
    est.total += rt.bytes;
    for (int k = 0; k < kTrafficSources; ++k) est.total_by_source[k] += rt.by_source[k];
    for (int k = 0; k < 4; ++k) est.max_rank.by_class[k] = std::max(est.max_rank.by_class[k], rt.bytes.by_class[k]);
  }
  return est;
}

// ---- time --------------------------------------------------------------------------------------

double model_flops_per_token(const ModelConfig& m, int64_t seq_len) {
  return 6.0 * double(matmul_params(m)) +
         12.0 * double(m.n_layers) * double(m.n_heads * m.head_dim) * (double(seq_len) + 1) / 2;
}

namespace {

// Causal (query, key) pairs of one sequence a rank's queries see: zigzag chunks r and 2cp-1-r,
// or contiguous chunk r.
double causal_pairs(int64_t T, int cp, int cp_rank, bool zigzag) {
  auto chunk = [](double len, double index) { return len * index * len + len * (len + 1) / 2; };
  if (cp == 1) return chunk(double(T), 0);
  if (zigzag) {
    const double len = double(T) / (2 * cp);
    return chunk(len, cp_rank) + chunk(len, 2 * cp - 1 - cp_rank);
  }
  return chunk(double(T) / cp, cp_rank);
}

}  // namespace

TimeEstimate estimate_time(const Config& c, const Layout& L, const TrafficEstimate& t, const ClusterModel& m) {
  const LocalShape s = local_shape(c, L.tp, L.cp, L.cp_a2a);
  const DtypeSizes z = dtype_sizes(c.run.device);
  const double rate = m.device_tflops * 1e12, alpha = m.latency_s;
  const double accum = double(c.train.grad_accum), nl = double(s.L);
  const bool rc = c.train.recompute == "layer";
  // Per micro-batch FLOPs of one rank: linears 2 N K M forward, twice that backward; the LM
  // head recomputes its logits in backward (chunked loss); recompute repeats each layer's forward.
  const double C = double(s.C), N = double(s.N), hd = double(s.Hq * s.D), ha = double(s.h * s.D);
  const double layer_w = 2 * hd * C + 2 * double(s.Hkv * s.D) * C + 3 * double(s.F) * C;  // local weights
  const double head_w = double(s.V) * C;
  const double lin_fwd = 2 * N * (nl * layer_w + head_w);
  const double lin = 3 * lin_fwd + 2 * N * head_w + (rc ? 2 * N * nl * layer_w : 0);

  TimeEstimate e;
  e.tokens_per_step = double(c.train.micro_batch) * accum * L.dp * double(s.T);
  e.model_flops_per_step = e.tokens_per_step * model_flops_per_token(c.model, s.T);
  for (int r = 0; r < L.topo.world_size; ++r) {
    const RankPlace& p = L.ranks[size_t(r)];
    // Attention: the rank's h heads over its ring position's chunks of the R ring.
    const double pairs = causal_pairs(s.T, s.R, p.ring_rank, c.parallel.zigzag) * double(s.B);
    const double att_fwd = 4 * pairs * ha;  // per layer: QK^T and PV
    const double att = (3 + (rc ? 1 : 0)) * att_fwd;
    TimeEstimate x;
    x.compute_s = accum * (lin + nl * att) / rate;
    LinkClass ring_link = LinkClass::Self;
    for (const Transfer& tr : t.ranks[size_t(r)].transfers) {
      const double cost = double(tr.calls) * (tr.messages * alpha + double(tr.bytes) / m.bandwidth(tr.bottleneck));
      if (tr.source == TrafficSource::TensorParallel) x.tp_s += cost;
      if (tr.source == TrafficSource::Gradients || tr.source == TrafficSource::Weights) x.grad_s += cost;
      if (tr.source == TrafficSource::AllToAll) x.a2a_s += cost;
      if (tr.source == TrafficSource::Ring) {
        x.ring_transfer_s += cost;
        ring_link = tr.bottleneck;
      }
    }
    if (s.R > 1) {
      // Lock-step ring paced by its slowest hop: per step, the block transfer hides behind the
      // attention of the block in hand; backward sends K/V and dK/dV at once, and the last
      // dK/dV hop back to the owner is never hidden.
      const double bw = m.bandwidth(ring_link);
      const double kv = 2.0 * double(s.Na * s.hk * s.D) * double(z.act), dkv = kv / double(z.act) * double(z.acc);
      const double steps = double(s.R - 1);
      const double fwd_c = att_fwd / s.R / rate, bwd_c = 2 * att_fwd / s.R / rate;
      const double fwd_x = alpha + kv / bw, bwd_x = 2 * alpha + (kv + dkv) / bw;
      const double per_layer = (1 + (rc ? 1 : 0)) * steps * std::max(0.0, fwd_x - fwd_c) +
                               steps * std::max(0.0, bwd_x - bwd_c) + alpha + dkv / bw;
      x.ring_exposed_s = accum * nl * per_layer;
    }
    x.step_s = x.compute_s + x.tp_s + x.a2a_s + x.ring_exposed_s + x.grad_s;
    if (r == 0 || x.step_s > e.step_s) {
      const double tok = e.tokens_per_step, fl = e.model_flops_per_step;
      e = x;
      e.slowest_rank = r;
      e.tokens_per_step = tok;
      e.model_flops_per_step = fl;
    }
  }
  const double W = L.topo.world_size;
  e.tokens_per_s_per_gpu = e.tokens_per_step / e.step_s / W;
  e.mfu = e.model_flops_per_step / e.step_s / W / (m.peak_tflops * 1e12);
  return e;
}

// ---- choosing the context-parallel split --------------------------------------------------------

std::vector<CpSplit> cp_splits(const Config& deck, const Topology& topo, const ClusterModel& m) {
  const Layout base = make_layout(topo, deck.parallel.tp, deck.parallel.cp, deck.parallel.dp, true, deck.parallel.cp_a2a);
  const int tpcp = base.tp * base.cp, rpn = topo.ranks_per_node;
  std::vector<CpSplit> out;
  for (int tp = 1; tp <= std::min(tpcp, rpn); ++tp) {
    if (tpcp % tp) continue;
    const int cp = tpcp / tp;
    for (int U = 1; U <= cp; ++U) {
      if (cp % U) continue;
      CpSplit x;
      x.tp = tp;
      x.U = U;
      x.R = cp / U;
      x.dp = base.dp;
      x.type = U == 1 ? "p2p" : x.R == 1 ? "a2a" : "a2a+p2p";
      Config c = deck;
      c.parallel.tp = tp;
      c.parallel.cp = cp;
      c.parallel.dp = base.dp;
      c.parallel.cp_a2a = U;
      c.parallel.cp_ring = x.R;
      c.parallel.cp_comm_type = x.type;
      try {
        const Layout L = make_layout(topo, tp, cp, base.dp, true, U);
        local_shape(c, tp, cp, U);  // heads, ffn and sequence vs tp and cp; the head rules of U
        const MemoryEstimate mem = estimate_memory(c, L, memory_options(c));
        int64_t overhead = 0;
        for (const MemoryItem& it : device_overheads(c, L)) overhead += it.count * it.bytes;
        x.memory_bytes = double(mem.total() + overhead);
        x.fits = x.memory_bytes * 1.1 <= m.device_memory_gib * double(int64_t(1) << 30);
        const TrafficEstimate t = estimate_traffic(c, L);
        for (const RankTraffic& rt : t.ranks) {
          int64_t ring = 0;
          for (int k = 0; k < 4; ++k) ring += rt.by_source[int(TrafficSource::Ring)].by_class[k];
          x.a2a_bytes = std::max(x.a2a_bytes, rt.a2a_bytes);
          x.ring_bytes = std::max(x.ring_bytes, ring);
          x.cross_node_bytes =
              std::max(x.cross_node_bytes, rt.bytes[LinkClass::SameRail] + rt.bytes[LinkClass::CrossRail]);
        }
        x.time = estimate_time(c, L, t, m);
      } catch (const InputError& e) {
        x.illegal = e.what();
      }
      out.push_back(x);
    }
  }
  return out;
}

int recommended_split(const std::vector<CpSplit>& v) {
  int best = -1;
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i].illegal.empty() && v[i].fits && (best < 0 || v[i].time.step_s < v[size_t(best)].time.step_s)) best = int(i);
  return best;
}

}  // namespace lct
