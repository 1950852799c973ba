// The planner against the code, under mpirun: for layouts of 4 and 8 ranks (emulated nodes via
// ranks_per_node; tp, cp, dp, zero, recompute, sequence parallelism, ring order, rail_map), one
// optimizer step of Llama + Optimizer exactly as the trainer runs it. Then, on every rank:
//  - the bytes the comm layer counted per link class equal estimate_traffic's prediction;
//  - the ring's point-to-point (source, destination) pairs are the layout's cp_next pairs;
//  - what the backend allocated at its peak equals estimate_memory's buffers, category by category,
//    on the device and in the offload host pool (cpu: 64-byte rounding).
#include <gtest/gtest.h>
#include <mpi.h>

#include <set>

#include "core/rng.h"
#include "deck/config.h"
#include "model/llama.h"
#include "optim/optimizer.h"
#include "parallel/context.h"
#include "parallel/planner.h"

namespace lct {
namespace {

struct Case {
  int world;  // runs when the job has this many ranks
  std::string keys;  // deck lines on top of the tiny model
};

Config config_of(const std::string& keys) {
  const std::string text =
      "[model]\nvocab_size = 64\ndim = 32\nn_layers = 2\nn_heads = 8\nn_kv_heads = 4\nhead_dim = 4\nffn_dim = 24\n"
      "[train]\nseq_len = 32\nmicro_batch = 2\nsteps = 1\n" +
      keys;
  return config_from_deck(resolved_stage(Deck::from_text(text, "traffic-test.deck"), 1));
}

// A category's bytes as the cpu backend allocates them (64-byte rounding), device or host.
int64_t cpu_rounded(const MemoryEstimate& m, const std::string& group, bool host) {
  int64_t n = 0;
  for (const MemoryItem& it : m.items)
    if (it.group == group && it.host == host) n += it.count * std::max<int64_t>(64, (it.bytes + 63) / 64 * 64);
  return n;
}

// One trainer step (train/trainer.cpp StageRunner::run): grads zeroed, target count reduced over
// dp x cp, grad_accum micro-batches, loss reduced, optimizer step.
void run_case(const Case& k) {
  int W = 0, me = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  SCOPED_TRACE(k.keys);
  const Config c = config_of(k.keys);
  auto ctx = make_parallel_context(MPI_COMM_WORLD, c.parallel);
  const Layout& L = ctx->layout;
  auto ops = make_cpu_ops(DType::F32, c.run.attention_tile);
  ASSERT_EQ(ops->allocated_bytes(), 0);
  const ModelShape shape = training_shape(c, *ctx);
  ZeroParams params(c.parallel.zero, *ops, ParamTable::build(c.model, L.tp, shape.tp_rank, shape.unit_padding),
                    ctx->dpcp.get(), ctx->tp.get(), c.parallel.sequence_parallel);
  Llama model(c.model, c.rope, shape, *ops, L.tp > 1 ? ctx->tp.get() : nullptr,
              L.cp_ring > 1 ? ctx->ring_comm() : nullptr, &params, ctx->a2a_comm());
  {
    Rng rng(7);
    std::vector<float> w(size_t(model.flat_capacity()), 0.f);
    for (int64_t i = 0; i < model.table().total; ++i) w[size_t(i)] = float(0.05 * rng.normal());
    params.upload(w);
  }
  const bool offload_optimizer = c.train.offload == "optimizer" || c.train.offload == "both";
  Optimizer opt(c.optim, *ops, params, offload_optimizer);

  ctx->traffic->reset();
  Rng rng(100 + uint64_t(ctx->me().dp_rank));
  std::vector<MicroBatch> micro(size_t(c.train.grad_accum));
  for (auto& mb : micro)
    for (int64_t i = 0; i < model.tokens_local(); ++i) {
      mb.inputs.push_back(int32_t(rng.below(uint64_t(c.model.vocab_size))));
      mb.targets.push_back(int32_t(rng.below(uint64_t(c.model.vocab_size))));
    }
  const double total = ctx->dpcp->all_reduce_scalar(double(micro.size() * size_t(model.tokens_local())));
  params.zero_grads();
  double loss = 0;
  for (const auto& mb : micro) loss += model.forward_backward(mb, 1.0 / total);
  loss = ctx->dpcp->all_reduce_scalar(loss) / total;
  EXPECT_TRUE(std::isfinite(loss));
  opt.step(1e-3, 1.0);

  // Prediction vs measurement, this rank.
  const TrafficEstimate plan = estimate_traffic(c, L);
  const RankTraffic& mine = plan.ranks[size_t(me)];
  for (LinkClass cl : {LinkClass::Self, LinkClass::IntraNode, LinkClass::SameRail, LinkClass::CrossRail})
    EXPECT_EQ(ctx->traffic->bytes(cl), mine.bytes[cl]) << "rank " << me << ", " << link_class_name(cl);
  EXPECT_EQ(ctx->traffic->p2p_peers(), mine.p2p) << "rank " << me;
  EXPECT_EQ(ctx->traffic->p2p_messages(), mine.p2p_messages) << "rank " << me;
  EXPECT_EQ(ctx->traffic->a2a_peers(), mine.a2a) << "rank " << me;
  EXPECT_EQ(ctx->traffic->a2a_bytes(), mine.a2a_bytes) << "rank " << me;
  EXPECT_GT(plan.total.total(), 0);

  // Every rank's recorded ring destinations, gathered: exactly the cp_next pairs of layout.json.
  const auto peers = ctx->traffic->p2p_peers();
  int32_t dst = peers.empty() ? -1 : peers.begin()->first;
  EXPECT_LE(peers.size(), 1u) << "rank " << me << " sent ring blocks to several peers";
  std::vector<int32_t> all(static_cast<size_t>(W));
  MPI_Allgather(&dst, 1, MPI_INT32_T, all.data(), 1, MPI_INT32_T, MPI_COMM_WORLD);
  for (int r = 0; r < W; ++r) EXPECT_EQ(all[size_t(r)], L.cp_ring > 1 ? L.ranks[size_t(r)].cp_next : -1) << "rank " << r;

  // Memory: the planner's buffer list is what the backend allocated, category by category, at the
  // peak of the step (ZeRO's pools fill during the step).
  const MemoryEstimate mem = estimate_memory(c, L, memory_options(c));
  const MemoryUse dev = ops->device_memory(), host = ops->host_memory();
  int64_t sum = 0;
  for (int k = 0; k < kMemKinds; ++k) {
    const std::string g = mem_name(Mem(k));
    EXPECT_EQ(dev.kind_peak[k], cpu_rounded(mem, g, false)) << "rank " << me << ", device " << g;
    EXPECT_EQ(host.kind_peak[k], cpu_rounded(mem, g, true)) << "rank " << me << ", host " << g;
    sum += dev.kind_peak[k];
  }
  EXPECT_EQ(dev.peak, sum) << "rank " << me << ": the categories peak together";
  EXPECT_LE(mem.total(), dev.peak);
}

const std::vector<Case>& cases() {
  static const std::vector<Case> v = {
      // The shapes the issue names: tp=2 cp=2 dp=2 over nodes of 2, and cp=4 over nodes of 2.
      {8, "[parallel]\ntp = 2\ncp = 2\nranks_per_node = 2\n"},
      {8, "[parallel]\ncp = 4\nranks_per_node = 2\nzero = 1\n"},
      {8, "[parallel]\ncp = 4\nranks_per_node = 2\nring_order = naive\n"},
      {8, "[parallel]\ntp = 2\ncp = 2\nranks_per_node = 4\nzero = 1\n[train]\nrecompute = layer\ngrad_accum = 2\n"},
      {8, "[parallel]\ntp = 2\ncp = 4\nranks_per_node = 4\nsequence_parallel = false\nzero = 1\n"},
      {8, "[parallel]\ncp = 8\nranks_per_node = 2\ncp_sharding = contiguous\n[optim]\nname = sgd\n"},
      {8, "[parallel]\ntp = 4\ncp = 2\nranks_per_node = 8\n[train]\nrecompute = layer\n"},
      {8, "[parallel]\ntp = 2\nranks_per_node = 2\nzero = 1\n"},
      {8, "[parallel]\ncp = 2\nranks_per_node = 4\nrail_map = 1,0,3,2\nzero = 1\n"},
      {4, "[parallel]\ntp = 2\ncp = 2\nranks_per_node = 2\n"},
      {4, "[parallel]\ncp = 4\nranks_per_node = 2\nzero = 1\n[train]\nrecompute = layer\n"},
      {4, "[parallel]\ncp = 2\nranks_per_node = 1\nzero = 1\n[train]\ngrad_accum = 3\n"},
      // ZeRO 2 / 3 and offload: per-unit reductions every micro-batch, gathers per layer, pools.
      {4, "[parallel]\ncp = 2\nranks_per_node = 2\nzero = 2\n[train]\ngrad_accum = 2\n"},
      {4, "[parallel]\ncp = 2\nranks_per_node = 2\nzero = 3\n[train]\ngrad_accum = 2\n"},
      {4, "[parallel]\ntp = 2\ncp = 2\nranks_per_node = 2\nzero = 3\n[train]\nrecompute = layer\noffload = both\n"},
      {4, "[parallel]\ncp = 4\nranks_per_node = 2\nzero = 2\n[train]\noffload = optimizer\n"},
      {4, "[parallel]\ntp = 2\nranks_per_node = 2\nzero = 3\n[model]\ntie_embeddings = true\n[train]\nrecompute = layer\noffload = activations\n"},
      {8, "[parallel]\ntp = 2\ncp = 2\nranks_per_node = 2\nzero = 3\n[train]\ngrad_accum = 2\nrecompute = layer\noffload = both\n"},
      {8, "[parallel]\ncp = 2\nranks_per_node = 4\nzero = 2\nsequence_parallel = false\n[train]\ngrad_accum = 3\n"},
      // Hierarchical context parallelism: all-to-all over U inside a node x ring over R; K/V heads
      // replicated when U > n_kv_heads / tp (U = 8 over 4 K/V heads); with recompute, ZeRO and
      // accumulation.
      {8, "[parallel]\ncp = 8\nranks_per_node = 4\ncp_comm_type = a2a+p2p\nhierarchical_cp_sizes = 2,4\n"},
      {8, "[parallel]\ntp = 2\ncp = 4\nranks_per_node = 4\ncp_comm_type = a2a+p2p\nhierarchical_cp_sizes = 2,2\n"
          "zero = 1\n[train]\nrecompute = layer\ngrad_accum = 2\n"},
      {8, "[parallel]\ncp = 8\nranks_per_node = 8\ncp_comm_type = a2a+p2p\nhierarchical_cp_sizes = 8,1\n"},
      {4, "[parallel]\ncp = 4\nranks_per_node = 4\ncp_comm_type = a2a\nzero = 3\n[train]\nrecompute = layer\n"},
      {4, "[parallel]\ncp = 4\nranks_per_node = 2\ncp_comm_type = a2a+p2p\nhierarchical_cp_sizes = 2,2\n"
          "[train]\ngrad_accum = 2\n"},
  };
  return v;
}

TEST(PlanTraffic, PredictionEqualsMeasurement) {
  int W = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &W);
  int ran = 0;
  for (const Case& k : cases())
    if (k.world == W) {
      run_case(k);
      ++ran;
    }
  if (ran == 0) GTEST_SKIP() << "no cases for " << W << " ranks";
}

}  // namespace
}  // namespace lct
