// The planning model behind `lctrain --plan`: per-rank memory, bytes sent per optimizer step over
// each link class, and an alpha-beta step-time estimate, from a Config and a Layout alone (no MPI,
// no allocation). It mirrors the code rather than a textbook: every buffer Llama, RingAttention
// and Optimizer allocate, and every collective and ring transfer they make, counted the way
// MpiComm counts bytes (count_ring: a collective's bytes go to the next rank of the communicator;
// exchange: a ring transfer's bytes go to cp_next). tests/parallel checks both against a run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "deck/config.h"
#include "parallel/cluster.h"
#include "parallel/layout.h"

namespace lct {

// Bytes of the "act" dtype (activations, weights forward reads) and the "acc" dtype (gradients,
// master weights, moments, accumulators) of a backend: cpu f32/f32, cuda bf16/f32.
struct DtypeSizes {
  int64_t act = 4, acc = 4;
};
DtypeSizes dtype_sizes(const std::string& device);

// The sizes one rank works with, as Llama derives them (heads, ffn and vocabulary after the tp
// split; tokens after the cp split; Ns = tokens of the residual stream under sequence parallelism).
struct LocalShape {
  int64_t B = 1, T = 0, Tl = 0, N = 0, Ns = 0;
  int64_t C = 0, D = 0, Hq = 0, Hkv = 0, F = 0, V = 0, L = 0;
  int tp = 1, cp = 1;
  bool sp = false;
  // Hierarchical context parallelism (cp = U x R, context_attention.h): inside attention a rank
  // holds Na = U x N tokens (its ring position's) for h = Hq / U query and hk = max(Hkv / U, 1)
  // K/V heads; U = 1: Na = N, h = Hq, hk = Hkv.
  int U = 1, R = 1;
  int64_t Na = 0, h = 0, hk = 0;
};
// Checks what Llama and ParamTable check (InputErrors naming the keys) and returns the sizes.
// cp_a2a = U, the all-to-all group (its head rules: layout.h check_cp_heads).
LocalShape local_shape(const Config& c, int tp, int cp, int cp_a2a = 1);

int64_t params_per_rank(const ModelConfig& m, int tp);  // ParamTable::build(m, tp, r).total
int64_t total_params(const ModelConfig& m);             // the full model (no vocabulary padding)
int64_t matmul_params(const ModelConfig& m);            // weights in a matmul: linears + LM head

// ---- memory ------------------------------------------------------------------------------------
// One allocation site, in the categories of the backends' allocation ledger (ops/ops.h, Mem):
// weights | gradients | optimizer | layer_inputs | activations | comm_buffers; `host`: in the
// offload pool (alloc_host) instead of device memory.
struct MemoryItem {
  std::string group;
  std::string name;
  int64_t count = 1;  // allocations of this size
  int64_t bytes = 0;  // each
  bool host = false;
};
struct MemoryEstimate {
  std::vector<MemoryItem> items;
  int64_t bytes(const std::string& group) const;       // device
  int64_t host_bytes(const std::string& group) const;  // offload pool
  int64_t total() const;                               // device
  int64_t host_total() const;
};

// The memory settings a run combines: recompute, ZeRO stage, offload (train.offload).
struct MemoryOptions {
  bool recompute = false;
  int zero = 0;
  bool offload_optimizer = false, offload_activations = false;
};
MemoryOptions memory_options(const Config& c);  // the deck's own

// The parameter space as the ZeRO store lays it out (ParamTable::units, each padded to dp x cp when
// zero >= 1): the embedding unit, one layer unit, the final norm + LM head unit, and the total.
struct UnitSizes {
  int64_t embed = 0, layer = 0, head = 0, total = 0;
};
UnitSizes unit_sizes(const ModelConfig& m, int tp, int64_t padding);

// What one rank allocates through the backend (device, and host when offloading) for Llama,
// RingAttention, the ZeRO store and the optimizer at its peak, one item per allocation site. The
// backend's own workspaces (cuBLASLt, LM-head tiles, attention scratch) are not allocations; they
// and the CUDA context and NCCL buffers are in device_overheads().
MemoryEstimate estimate_memory(const Config& c, const Layout& L, const MemoryOptions& o);

// Device memory outside the allocation ledger (cuda only; empty on cpu): the CUDA context, NCCL's
// buffers per communicator, cuBLASLt's workspace, the LM head's logits tiles, attention scratch.
// The context and NCCL figures are assumptions (docs/parallel.md), to be checked on a GPU
// (tests/gpu/check.sh compares cudaMemGetInfo with the plan).
std::vector<MemoryItem> device_overheads(const Config& c, const Layout& L);

// ---- traffic -----------------------------------------------------------------------------------
enum class TrafficSource { Ring = 0, TensorParallel = 1, Gradients = 2, Weights = 3, AllToAll = 4 };
constexpr int kTrafficSources = 5;
const char* traffic_source_name(TrafficSource s);

struct LinkBytes {
  int64_t by_class[4] = {0, 0, 0, 0};  // indexed by LinkClass
  int64_t& operator[](LinkClass c) { return by_class[int(c)]; }
  int64_t operator[](LinkClass c) const { return by_class[int(c)]; }
  int64_t total() const { return by_class[0] + by_class[1] + by_class[2] + by_class[3]; }
  LinkBytes& operator+=(const LinkBytes& o);
  bool operator==(const LinkBytes& o) const;
};

// One kind of transfer a rank makes each optimizer step.
struct Transfer {
  TrafficSource source = TrafficSource::Ring;
  std::string what;        // e.g. "tp all-gather [N, C]"
  int group_size = 1;      // communicator size
  int messages = 1;        // messages per call of a ring algorithm (p2p: 1)
  int64_t calls = 0;       // per optimizer step
  int64_t bytes = 0;       // per call, as MpiComm counts them (all-to-all: the part for dst)
  int dst = 0;             // world rank the counted bytes go to (all-to-all: one transfer per peer)
  LinkClass link = LinkClass::Self;        // this rank's hop to dst
  LinkClass bottleneck = LinkClass::Self;  // slowest hop of the group's ring (it paces the call)
};

struct RankTraffic {
  std::vector<Transfer> transfers;
  LinkBytes bytes;                         // per optimizer step, summed over transfers
  LinkBytes by_source[kTrafficSources];
  std::map<int, int64_t> p2p;              // ring transfers: destination -> bytes
  int64_t p2p_messages = 0;
  std::map<int, int64_t> a2a;              // all-to-all: destination -> bytes (Traffic::a2a_peers)
  int64_t a2a_bytes = 0;
};

struct TrafficEstimate {
  std::vector<RankTraffic> ranks;          // per world rank
  LinkBytes total;                         // summed over ranks
  LinkBytes total_by_source[kTrafficSources];
  LinkBytes max_rank;                      // per class, the largest figure of any rank
};
TrafficEstimate estimate_traffic(const Config& c, const Layout& L);

// ---- time --------------------------------------------------------------------------------------
// Model FLOPs per token (training, causal): 6 * matmul_params + 12 * n_layers * n_heads * head_dim
// * (T + 1) / 2, i.e. 6 * params + 6 * n_layers * T * dim for Llama shapes.
double model_flops_per_token(const ModelConfig& m, int64_t seq_len);

struct TimeEstimate {
  double compute_s = 0;         // this rank's FLOPs (with recompute and the LM-head recompute) / rate
  double tp_s = 0;              // tensor-parallel collectives (on the critical path)
  double ring_transfer_s = 0;   // K/V and dK/dV transfers if nothing overlapped
  double ring_exposed_s = 0;    // the part attention compute does not hide
  double a2a_s = 0;             // all-to-all of q, K/V, out and their gradients (blocking, not overlapped)
  double grad_s = 0;            // ZeRO traffic over dp x cp (gradient reductions, weight gathers), not overlapped
  double step_s = 0;            // compute + tp + a2a + ring exposed + grad
  int slowest_rank = 0;
  double tokens_per_step = 0;   // global
  double model_flops_per_step = 0;
  double tokens_per_s_per_gpu = 0;
  double mfu = 0;               // model FLOPs / (step time * peak) per GPU
};
// Alpha-beta: a call of a ring algorithm costs messages * latency + counted bytes / bandwidth of
// its slowest hop; ring attention overlaps each block's transfer with that block's attention.
// The step time is that of the slowest rank.
TimeEstimate estimate_time(const Config& c, const Layout& L, const TrafficEstimate& t, const ClusterModel& m);

// ---- choosing the context-parallel split --------------------------------------------------------
// One (tp, U, R) split of the deck's tp x cp ranks (dp and the batch kept): the legality verdict,
// and when legal its memory, traffic and step time with the deck's other settings.
struct CpSplit {
  int tp = 1, U = 1, R = 1, dp = 1;
  std::string type;        // p2p | a2a | a2a+p2p
  std::string illegal;     // why not ("" = legal)
  double memory_bytes = 0; // device allocations + backend overheads (the margin not included)
  bool fits = false;       // with the 10% margin
  int64_t a2a_bytes = 0, ring_bytes = 0, cross_node_bytes = 0;  // per rank (busiest rank), per step
  TimeEstimate time;
};
// Every split with tp' x U x R = tp x cp of the deck's layout (tp' a divisor up to the ranks per
// node, U a divisor of cp'), aware ring order. The deck's own memory settings; `topo` as --plan's.
std::vector<CpSplit> cp_splits(const Config& c, const Topology& topo, const ClusterModel& m);
// The fastest split that fits (index into v), -1 if none.
int recommended_split(const std::vector<CpSplit>& v);

}  // namespace lct
