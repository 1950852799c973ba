// Decoding against the full forward pass, under mpirun -np 4: for each layout (tp, cp, dp of 4
// ranks, zigzag and contiguous sharding) a seeded model generates greedily from a prompt whose
// padding leaves some cp ranks with few or no real tokens; each step's logits must equal those of
// ONE forward pass of a single-rank model over prompt + generated tokens (fp32 cpu, rel <= 1e-5),
// and each generated id must be that reference's argmax. Then: prefill memory per rank stays flat
// when the prompt grows with cp (as training's does).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "infer/generate.h"
#include "model/params.h"
#include "parallel/context.h"

namespace lct {
namespace {

ModelConfig tiny_model() {
  ModelConfig m;
  m.vocab_size = 97;  // odd: the tp = 2 slices differ in size, and both are padded
  m.make_vocab_size_divisible_by = 8;
  m.dim = 32;
  m.n_layers = 2;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 8;
  m.ffn_dim = 48;
  m.init_std = 0.3;
  return m;
}

RopeConfig tiny_rope() {
  RopeConfig r;
  r.theta = 500;
  return r;
}

void seeded_weights(Llama& model, Ops& ops) {
  std::vector<float> f;
  init_params_host(model.table(), model.config(), 42, f);
  f.resize(size_t(model.params().flat.numel()), 0.0f);
  ops.from_host(model.params().flat, f.data());
}

std::vector<int32_t> prompt_of(int64_t n) {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < n; ++i) p.push_back(int32_t((i * 37 + 11) % 97));
  return p;
}

// Logits of every position of `seq` from one forward pass of a single-rank model, [T][V].
std::vector<std::vector<double>> full_forward_logits(const std::vector<int32_t>& seq) {
  auto ops = make_cpu_ops(DType::F32, 8);
  const ModelConfig m = tiny_model();
  ModelShape shape;
  shape.seq_len = int64_t(seq.size());
  Llama model(m, tiny_rope(), shape, *ops, nullptr, nullptr);
  seeded_weights(model, *ops);
  MicroBatch mb;
  mb.inputs = seq;
  mb.targets.assign(seq.size(), -1);
  model.forward(mb);
  const int64_t T = int64_t(seq.size()), C = m.dim, V = m.vocab_size;
  std::vector<float> hidden(size_t(T * C)), head(size_t(V * C));
  ops->to_host(hidden.data(), model.final_hidden());
  ops->to_host(head.data(), model.lm_head());
  std::vector<std::vector<double>> out(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(V)));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 0; v < V; ++v) {
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += double(hidden[size_t(t * C + c)]) * double(head[size_t(v * C + c)]);
      out[size_t(t)][size_t(v)] = s;
    }
  return out;
}

struct Layout {
  int tp, cp;
  bool zigzag;
};

std::unique_ptr<ParallelContext> context(const Layout& l) {
  ParallelConfig pc;
  pc.tp = l.tp;
  pc.cp = l.cp;
  pc.dp = 0;
  pc.zigzag = l.zigzag;
  return make_parallel_context(MPI_COMM_WORLD, pc);
}

std::unique_ptr<Llama> bound_model(ParallelContext& ctx, Ops& ops, const Layout& l) {
  ModelShape shape;
  shape.tp = l.tp;
  shape.tp_rank = ctx.me().tp_rank;
  shape.cp = l.cp;
  shape.cp_rank = ctx.me().cp_rank;
  shape.zigzag = l.zigzag;
  shape.seq_len = 2 * l.cp * l.tp;  // the decoder brings its own buffers: the model's are minimal
  shape.recompute = true;
  auto model = std::make_unique<Llama>(tiny_model(), tiny_rope(), shape, ops, l.tp > 1 ? ctx.tp.get() : nullptr,
                                       l.cp > 1 ? ctx.cp.get() : nullptr);
  seeded_weights(*model, ops);
  return model;
}

int world_size() {
  int w = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &w);
  return w;
}

class DecodeLayouts : public ::testing::TestWithParam<std::tuple<int, int, bool, int>> {};

TEST_P(DecodeLayouts, LogitsEqualTheFullForward) {
  if (world_size() != 4) GTEST_SKIP() << "run with mpirun -np 4";
  const auto [tp, cp, zigzag, P] = GetParam();
  const Layout l{tp, cp, zigzag};
  auto ctx = context(l);
  auto ops = make_cpu_ops(DType::F32, 8);
  auto model = bound_model(*ctx, *ops, l);
  LlamaDecoder dec(*model, tiny_rope(), *ops, tp > 1 ? ctx->tp.get() : nullptr, cp > 1 ? ctx->cp.get() : nullptr);
  const std::vector<int32_t> prompt = prompt_of(P);
  GenerationOptions o;
  o.max_new = 12;
  o.keep_logits = true;
  const GenerationResult r = generate(dec, *ops, tp > 1 ? ctx->tp.get() : nullptr, cp > 1 ? ctx->cp.get() : nullptr,
                                      prompt, o);
  ASSERT_EQ(int64_t(r.ids.size()), o.max_new);
  // Every cached token is held once over the ring: prompt + all generated but the last.
  int64_t cached = 0;
  for (int64_t c : dec.cached_per_rank()) cached += c;
  EXPECT_EQ(cached, P + o.max_new - 1);
  EXPECT_EQ(dec.cache()->size(), dec.cached_per_rank()[size_t(ctx->me().cp_rank)]);

  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), r.ids.begin(), r.ids.end() - 1);
  const auto ref = full_forward_logits(seq);
  for (int64_t i = 0; i < o.max_new; ++i) {
    SCOPED_TRACE(testing::Message() << "tp " << tp << " cp " << cp << (zigzag ? " zigzag" : " contiguous")
                                    << " prompt " << P << " step " << i);
    const std::vector<double>& want = ref[size_t(P - 1 + i)];
    const std::vector<double>& got = r.logits[size_t(i)];
    double err = 0, scale = 0;
    for (size_t v = 0; v < want.size(); ++v) {
      err = std::max(err, std::fabs(got[v] - want[v]));
      scale = std::max(scale, std::fabs(want[v]));
    }
    EXPECT_LE(err, 1e-5 * scale);
    EXPECT_EQ(r.ids[size_t(i)], argmax(want));
  }
  // The ids vary (a model stuck on one token would prove little).
  std::vector<int32_t> distinct = r.ids;
  std::sort(distinct.begin(), distinct.end());
  EXPECT_GE(std::unique(distinct.begin(), distinct.end()) - distinct.begin(), 4);
}

// (tp, cp, zigzag, prompt length): 29 pads to 32 (2 cp tp = 8 or 16), 3 leaves cp = 4's last rank
// without any real token (its shard starts empty and decode fills it first).
INSTANTIATE_TEST_SUITE_P(
    Layouts, DecodeLayouts,
    ::testing::Values(std::make_tuple(1, 1, true, 29), std::make_tuple(1, 2, true, 29), std::make_tuple(1, 4, true, 29),
                      std::make_tuple(1, 4, true, 3), std::make_tuple(1, 2, false, 29), std::make_tuple(2, 1, true, 29),
                      std::make_tuple(2, 2, true, 29), std::make_tuple(2, 2, true, 5)));

// Peak backend bytes a prefill adds on a rank, with a fresh backend.
int64_t prefill_peak(const Layout& l, int64_t T) {
  auto ctx = context(l);
  auto ops = make_cpu_ops(DType::F32, 8);
  auto model = bound_model(*ctx, *ops, l);
  LlamaDecoder dec(*model, tiny_rope(), *ops, nullptr, l.cp > 1 ? ctx->cp.get() : nullptr);
  dec.prefill(prompt_of(T), 0);
  return dec.times().prefill_extra_peak_bytes;
}

TEST(PrefillMemory, FlatInCp) {
  if (world_size() != 4) GTEST_SKIP() << "run with mpirun -np 4";
  const int64_t per_rank = 512;
  const int64_t cp1 = prefill_peak({1, 1, true}, 4 * per_rank);
  const int64_t cp2 = prefill_peak({1, 2, true}, 2 * per_rank);
  const int64_t cp4 = prefill_peak({1, 4, true}, 4 * per_rank);
  const int64_t cp2_long = prefill_peak({1, 2, true}, 4 * per_rank);
  {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
      std::printf("prefill peak bytes per rank: cp1 T=%lld: %lld; cp2 T=%lld: %lld, T=%lld: %lld; cp4 T=%lld: %lld\n",
                  (long long)(4 * per_rank), (long long)cp1, (long long)(2 * per_rank), (long long)cp2,
                  (long long)(4 * per_rank), (long long)cp2_long, (long long)(4 * per_rank), (long long)cp4);
  }
  // The same tokens per rank: the same memory (cp = 2 and 4 both run the ring).
  EXPECT_NEAR(double(cp4), double(cp2), 0.02 * double(cp2));
  // The same prompt over more ranks: less memory per rank, about 1/cp.
  EXPECT_LT(double(cp4), 0.6 * double(cp2_long));
  EXPECT_LT(double(cp4), 0.35 * double(cp1));
}

}  // namespace
}  // namespace lct
