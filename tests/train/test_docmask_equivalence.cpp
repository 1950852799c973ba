// Packed documents (issue 18): a micro-batch of two sequences, each several documents whose
// boundaries straddle zigzag chunks and ring hops, with data.reset_attention_mask and
// reset_position_ids, gives the same loss and every gradient tensor (rel <= 1e-5) as the documents
// run one by one as separate sequences at cp = 1, each normalised by the same global token count:
// at cp 1, 2, 4 with zigzag and doc_zigzag sharding, at tp 2 (with sequence parallelism) and
// tp 2 x cp 2, with and without eod_mask_loss. Without reset_attention_mask the same data gives a
// different result (the mask matters). Runs on 4 ranks; smaller layouts run in groups of ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/llama.h"
#include "parallel/context.h"
#include "test_util.h"
#include "train/batch.h"

namespace lct {
namespace {

constexpr int32_t kEod = 63;
constexpr int64_t kT = 64, kB = 2;

using Grads = std::map<std::string, std::vector<double>>;

struct Result {
  double loss = 0;  // summed cross-entropy x scale (the mean over the global targets)
  double targets = 0;
  Grads grads;      // full tensors
};

ModelConfig tiny_model() {
  ModelConfig m;
  m.vocab_size = 64;
  m.make_vocab_size_divisible_by = 8;
  m.dim = 32;
  m.n_layers = 2;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 8;
  m.ffn_dim = 64;
  m.init_std = 0.2;  // larger than training's so attention is far from uniform
  return m;
}

RopeConfig tiny_rope() {
  RopeConfig r;
  r.theta = 100;
  return r;
}

// Two samples of kT + 1 tokens: documents of the given lengths, each ending with the EOD.
std::vector<Sample> packed_samples(const std::vector<std::vector<int>>& lengths) {
  std::vector<Sample> out;
  Rng rng(31);
  for (const auto& row : lengths) {
    Sample s;
    for (int len : row) {
      for (int i = 0; i + 1 < len; ++i) s.tokens.push_back(int32_t(rng.below(kEod)));
      s.tokens.push_back(kEod);
    }
    s.tokens.push_back(int32_t(rng.below(kEod)));  // the target of the last token
    EXPECT_EQ(int64_t(s.tokens.size()), kT + 1);
    out.push_back(s);
  }
  return out;
}

const std::vector<std::vector<int>> kDocs = {{13, 22, 7, 22}, {30, 5, 1, 28}};

// Full tensors of a rank's gradient slices, summed over the ranks of `comm` (tp slices placed,
// partial sums over cp and sequence-parallel tp added).
Grads full_grads(Llama& model, Ops& ops, MPI_Comm comm) {
  const ParamTable& t = model.table();
  std::vector<float> local(size_t(t.total));
  ops.to_host(local.data(), model.grads().flat.slice(0, t.total));
  Grads g;
  for (const ParamSpec& p : t.specs) {
    std::vector<double> full(size_t(p.rows * (p.is_vector ? 1 : p.cols)), 0.0);
    const int64_t cols = p.is_vector ? 1 : p.cols, lcols = p.is_vector ? 1 : p.local_cols;
    for (int64_t r = 0; r < p.valid_rows; ++r)
      for (int64_t c = 0; c < lcols; ++c)
        full[size_t((p.row0 + r) * cols + p.col0 + c)] += local[size_t(p.offset + r * lcols + c)];
    MPI_Allreduce(MPI_IN_PLACE, full.data(), int(full.size()), MPI_DOUBLE, MPI_SUM, comm);
    g[p.name] = std::move(full);
  }
  return g;
}

void load_init_weights(Llama& model, Ops& ops) {
  std::vector<float> w;
  init_params_host(model.table(), model.config(), 5, w);
  ops.from_host(model.params().flat.slice(0, model.table().total), w.data());
}

// The reference: every (kept part of a) document as its own sequence at cp = tp = 1, RoPE from 0,
// plain causal attention; targets as in the packed sample (the EOD's is the next document's first
// token unless eod_mask_loss).
Result run_separately(const std::vector<Sample>& samples, const std::vector<std::vector<int>>& kept,
                      const std::vector<std::vector<int>>& begins, bool eod_mask_loss) {
  auto ops = make_cpu_ops(DType::F32, 8);
  struct Piece {
    MicroBatch mb;
  };
  std::vector<Piece> pieces;
  double total = 0;
  for (size_t b = 0; b < samples.size(); ++b)
    for (size_t d = 0; d < kept[b].size(); ++d) {
      Piece p;
      for (int i = 0; i < kept[b][d]; ++i) {
        const size_t at = size_t(begins[b][d] + i);
        p.mb.inputs.push_back(samples[b].tokens[at]);
        const bool masked = eod_mask_loss && samples[b].tokens[at] == kEod;
        p.mb.targets.push_back(masked ? -1 : samples[b].tokens[at + 1]);
        total += masked ? 0 : 1;
      }
      if (!p.mb.inputs.empty()) pieces.push_back(std::move(p));
    }
  Result res;
  res.targets = total;
  for (const Piece& p : pieces) {
    ModelShape s;
    s.micro_batch = 1;
    s.seq_len = int64_t(p.mb.inputs.size());
    s.attention_tile = 8;
    Llama model(tiny_model(), tiny_rope(), s, *ops, nullptr, nullptr);
    load_init_weights(model, *ops);
    ops->zero(model.grads().flat);
    res.loss += model.forward_backward(p.mb, 1.0 / total) / total;
    const Grads g = full_grads(model, *ops, MPI_COMM_SELF);
    for (const auto& [name, v] : g) {
      auto& acc = res.grads[name];
      if (acc.empty()) acc.assign(v.size(), 0.0);
      for (size_t i = 0; i < v.size(); ++i) acc[i] += v[i];
    }
  }
  return res;
}

struct Layout {
  int tp, cp;
  CpSharding sharding;
};

// The packed samples on groups of tp x cp ranks.
Result run_packed(const std::vector<Sample>& samples, const Layout& lay, bool reset_mask, bool eod_mask_loss,
                  bool reset_positions = true) {
  int world = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int n = lay.tp * lay.cp;
  MPI_Comm group;
  MPI_Comm_split(MPI_COMM_WORLD, rank / n, rank, &group);
  Result res;
  {
    ParallelConfig pc;
    pc.tp = lay.tp;
    pc.cp = lay.cp;
    pc.dp = 1;
    auto ctx = make_parallel_context(group, pc);
    auto ops = make_cpu_ops(DType::F32, 8);
    ModelShape s;
    s.micro_batch = kB;
    s.seq_len = kT;
    s.tp = lay.tp;
    s.tp_rank = ctx->me().tp_rank;
    s.cp = lay.cp;
    s.cp_rank = ctx->me().cp_rank;
    s.zigzag = lay.sharding != CpSharding::Contiguous;
    s.attention_tile = 8;
    Llama model(tiny_model(), tiny_rope(), s, *ops, lay.tp > 1 ? ctx->tp.get() : nullptr,
                lay.cp > 1 ? ctx->cp.get() : nullptr);
    load_init_weights(model, *ops);
    BatchLayout L;
    L.seq_len = kT;
    L.cp = lay.cp;
    L.cp_rank = ctx->me().cp_rank;
    L.sharding = lay.sharding;
    L.reset_attention_mask = reset_mask;
    L.reset_position_ids = reset_positions;
    L.eod_mask_loss = eod_mask_loss;
    L.eod = kEod;
    const MicroBatch mb = make_micro_batch(samples, 0, kB, L);
    res.targets = ctx->dpcp->all_reduce_scalar(double(count_targets(mb)));
    ops->zero(model.grads().flat);
    const double loss = model.forward_backward(mb, 1.0 / res.targets);
    res.loss = ctx->dpcp->all_reduce_scalar(loss) / res.targets;
    res.grads = full_grads(model, *ops, group);
    // Sequence parallelism leaves each tp rank with its tokens' share of a norm weight's gradient
    // (the optimizer all-reduces them); the split tensors' tp slices are disjoint: the sum above
    // is right for both. The vocabulary and column-split tensors are complete.
  }
  MPI_Comm_free(&group);
  return res;
}

// Documents as doc_zigzag keeps them: each padded to a multiple of 2cp slots, the tail cut at kT.
void kept_documents(int unit, std::vector<std::vector<int>>& kept, std::vector<std::vector<int>>& begins) {
  kept.clear();
  begins.clear();
  for (const auto& row : kDocs) {
    std::vector<int> k, b;
    int slot = 0, at = 0;
    for (int len : row) {
      const int seg = std::min((len + unit - 1) / unit * unit, int(kT) - slot);
      b.push_back(at);
      k.push_back(std::min(len, seg));
      slot += seg;
      at += len;
    }
    kept.push_back(k);
    begins.push_back(b);
  }
}

double worst_error(const Result& got, const Result& ref, std::string* worst_name) {
  double worst = 0;
  for (const auto& [name, g] : ref.grads) {
    const double e = test::rel_error(got.grads.at(name), g);
    if (e > worst) worst = e, *worst_name = name;
  }
  return worst;
}

TEST(DocumentMasking, PackedEqualsSeparateSequences) {
  const std::vector<Sample> samples = packed_samples(kDocs);
  const std::vector<Layout> layouts = {
      {1, 1, CpSharding::Zigzag},    {1, 2, CpSharding::Zigzag},    {1, 4, CpSharding::Zigzag},
      {1, 1, CpSharding::DocZigzag}, {1, 2, CpSharding::DocZigzag}, {1, 4, CpSharding::DocZigzag},
      {2, 1, CpSharding::Zigzag},    {2, 2, CpSharding::Zigzag},    {2, 2, CpSharding::DocZigzag}};
  for (bool eod_mask_loss : {false, true}) {
    for (const Layout& lay : layouts) {
      std::vector<std::vector<int>> kept, begins;
      kept_documents(lay.sharding == CpSharding::DocZigzag ? 2 * lay.cp : 1, kept, begins);
      const Result ref = run_separately(samples, kept, begins, eod_mask_loss);
      const Result got = run_packed(samples, lay, true, eod_mask_loss);
      const std::string what = std::string("tp ") + std::to_string(lay.tp) + " cp " + std::to_string(lay.cp) + " " +
                               cp_sharding_name(lay.sharding) + (eod_mask_loss ? " eod_mask_loss" : "");
      ASSERT_EQ(got.targets, ref.targets) << what;
      EXPECT_LE(std::abs(got.loss - ref.loss) / ref.loss, 1e-5) << what << ": loss " << got.loss << " vs " << ref.loss;
      ASSERT_EQ(got.grads.size(), ref.grads.size());
      for (const auto& [name, g] : ref.grads) {
        ASSERT_TRUE(std::any_of(g.begin(), g.end(), [](double x) { return x != 0; })) << name << ": zero gradient";
        EXPECT_LE(test::rel_error(got.grads.at(name), g), 1e-5) << what << ": gradient of " << name;
      }
      std::string worst;
      const double e = worst_error(got, ref, &worst);
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      if (rank == 0) std::printf("%-40s loss %.6f, worst gradient rel error %.2e (%s)\n", what.c_str(), got.loss, e, worst.c_str());
    }
  }
}

// The same data without reset_attention_mask (positions still reset): tokens see the documents
// before them, and the result is not the separate documents' any more.
TEST(DocumentMasking, WithoutTheMaskTheResultDiffers) {
  const std::vector<Sample> samples = packed_samples(kDocs);
  std::vector<std::vector<int>> kept, begins;
  kept_documents(1, kept, begins);
  const Result ref = run_separately(samples, kept, begins, false);
  for (int cp : {1, 4}) {
    const Result got = run_packed(samples, {1, cp, CpSharding::Zigzag}, false, false);
    std::string worst;
    const double e = worst_error(got, ref, &worst);
    EXPECT_GT(e, 1e-2) << "cp " << cp << ": without the mask the gradients must differ (worst " << worst << ")";
    EXPECT_GT(std::abs(got.loss - ref.loss) / ref.loss, 1e-4) << "cp " << cp;
  }
}

// RoPE is relative: inside a document-masked attention a constant shift of a document's positions
// changes nothing, so reset_position_ids shows only without the mask. There it must.
TEST(DocumentMasking, PositionResetMattersWithoutTheMask) {
  const std::vector<Sample> samples = packed_samples(kDocs);
  for (int cp : {1, 2}) {
    const Result reset = run_packed(samples, {1, cp, CpSharding::Zigzag}, false, false, true);
    const Result plain = run_packed(samples, {1, cp, CpSharding::Zigzag}, false, false, false);
    std::string worst;
    EXPECT_GT(worst_error(reset, plain, &worst), 1e-3) << "cp " << cp << ": positions restarting per document";
  }
}

}  // namespace
}  // namespace lct
