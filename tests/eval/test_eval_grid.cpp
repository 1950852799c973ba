// evaluate_grid under mpirun -np 2: the same seeded model scored as dp = 2, tp = 2 (vocabulary slices
// combined across ranks) and cp = 2 (ring attention, answer rows spread over the ring) must give
// the same predictions as a plain single-rank forward pass scored on the host. Small micro-batches
// force several forward passes and padding.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>

#include "eval/eval.h"
#include "eval/generated_eval.h"
#include "eval/prompts.h"
#include "test_util.h"

namespace lct {
namespace {

ModelConfig tiny_model() {
  ModelConfig m;
  m.vocab_size = 256;
  m.dim = 16;
  m.n_layers = 2;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 4;
  m.ffn_dim = 24;
  m.init_std = 0.5;  // large weights: clear argmaxes, no near-ties between layouts
  return m;
}

void seeded_weights(Llama& model, Ops& ops) {
  std::vector<float> f;
  init_params_host(model.table(), model.config(), 42, f);
  std::vector<double> d(f.begin(), f.end());
  d.resize(size_t(model.params().flat.numel()), 0.0);
  ops.from_host(model.params().flat, d.data());
}

EvalGrid tiny_grid() {
  EvalGrid g;
  g.spec.task = SynthTask::Niah;
  g.spec.needles = g.spec.min_needles = 1;
  g.spec.filler = "phrases";
  g.lengths = {32, 64};
  g.depths = {0, 50, 100};
  g.samples = 3;
  g.seed = 5;
  g.tokens_per_rank = 64;
  return g;
}

// The reference, on this rank alone: one prompt at a time, logits = lm_head . final_hidden on the host.
std::vector<EvalCell> reference(const EvalGrid& g, const EvalModel& em) {
  auto ops = make_cpu_ops(DType::F64, 8);
  std::vector<EvalCell> cells;
  for (int64_t L : g.lengths) {
    ModelShape shape;
    shape.seq_len = L;
    Llama model(em.model, em.rope, shape, *ops, nullptr, nullptr);
    seeded_weights(model, *ops);
    const auto prompts = make_eval_prompts(g.spec, L, g.depths, g.samples, g.seed, g.with_needle);
    const int64_t C = em.model.dim, V = em.model.vocab_size;
    std::vector<double> head(static_cast<size_t>(V * C)), hidden(size_t(L * C));
    ops->to_host(head.data(), model.lm_head());
    for (size_t d = 0; d < g.depths.size(); ++d) {
      EvalCell c;
      c.length = L;
      c.depth = g.depths[d];
      for (int64_t k = 0; k < g.samples; ++k) {
        const EvalPrompt& p = prompts[d * size_t(g.samples) + size_t(k)];
        MicroBatch mb;
        mb.inputs = p.tokens;
        mb.targets.assign(size_t(L), -1);
        model.forward(mb);
        ops->to_host(hidden.data(), model.final_hidden());
        int64_t right = 0;
        for (int64_t a = p.answer_begin; a < p.answer_end; ++a) {
          std::vector<double> logits(static_cast<size_t>(V));
          for (int64_t v = 0; v < V; ++v)
            for (int64_t i = 0; i < C; ++i) logits[size_t(v)] += head[size_t(v * C + i)] * hidden[size_t((a - 1) * C + i)];
          int64_t best = 0;
          double mx = logits[0], se = 0;
          for (int64_t v = 1; v < V; ++v)
            if (logits[size_t(v)] > mx) mx = logits[size_t(v)], best = v;
          for (double x : logits) se += std::exp(x - mx);
          right += best == p.tokens[size_t(a)];
          c.nll_sum += mx + std::log(se) - logits[size_t(p.tokens[size_t(a)])];
          c.tokens += 1;
        }
        c.tokens_correct += right;
        c.correct += right == p.answer_end - p.answer_begin;
        c.samples += 1;
      }
      cells.push_back(c);
    }
  }
  return cells;
}

class EvalGridLayouts : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(EvalGridLayouts, MatchTheSingleRankReference) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != 2) GTEST_SKIP() << "run with mpirun -np 2";
  const auto [tp, cp] = GetParam();
  ParallelConfig pc;
  pc.tp = tp;
  pc.cp = cp;
  pc.dp = 0;
  auto ctx = make_parallel_context(MPI_COMM_WORLD, pc);
  auto ops = make_cpu_ops(DType::F64, 8);
  EvalModel em;
  em.model = tiny_model();
  em.rope.theta = 1000;
  const EvalGrid g = tiny_grid();
  int loads = 0;
  const std::vector<EvalCell> got = evaluate_grid(g, em, *ctx, *ops, [&](Llama& m) {
    ++loads;
    seeded_weights(m, *ops);
  });
  EXPECT_EQ(loads, 1) << "weights are loaded once and copied to the other lengths' models";
  const std::vector<EvalCell> want = reference(g, em);
  ASSERT_EQ(got.size(), want.size());
  int64_t right = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "tp " << tp << " cp " << cp << " length " << got[i].length << " depth "
                                    << got[i].depth);
    EXPECT_EQ(got[i].length, want[i].length);
    EXPECT_EQ(got[i].depth, want[i].depth);
    EXPECT_EQ(got[i].samples, 3);
    EXPECT_EQ(got[i].tokens, 12);
    EXPECT_EQ(got[i].tokens_correct, want[i].tokens_correct);
    EXPECT_EQ(got[i].correct, want[i].correct);
    EXPECT_NEAR(got[i].nll_sum, want[i].nll_sum, 1e-8 * (1 + want[i].nll_sum));
    right += got[i].tokens_correct;
  }
  EXPECT_LT(right, 12 * 18) << "a random model does not know the answers";
}

// Seeded weights, then a final norm that keeps hidden component 0 only and an LM head that maps it
// to passkey digit 16 (positive) or 17 (negative): every prediction is one of two digits, chosen by
// the whole forward pass, so about a fifth of one-digit passkeys come out right.
void two_digit_weights(Llama& model, Ops& ops) {
  std::vector<float> f;
  init_params_host(model.table(), model.config(), 42, f);
  f.resize(size_t(model.params().flat.numel()), 0.0f);
  for (const ParamSpec& p : model.table().specs) {
    if (p.name == "model.norm.weight") {
      for (int64_t i = 0; i < p.local_numel(); ++i) f[size_t(p.offset + i)] = i == 0 ? 1.0f : 0.0f;
    } else if (p.name == "lm_head.weight") {
      for (int64_t i = 0; i < p.local_numel(); ++i) f[size_t(p.offset + i)] = 0.0f;
      for (int64_t v : {16, 17})
        if (v >= p.row0 && v < p.row0 + p.valid_rows) f[size_t(p.offset + (v - p.row0) * p.local_cols)] = v == 16 ? 1.0f : -1.0f;
    }
  }
  std::vector<double> d(f.begin(), f.end());
  ops.from_host(model.params().flat, d.data());
}

// eval.by_generation: greedy generation of one-token answers is the teacher-forced argmax of the
// answer row, so both scorings give the same cells, at every layout (dp shares the prompts out, cp
// prefills over the ring and merges the decode, tp splits heads and vocabulary).
TEST_P(EvalGridLayouts, GenerationGivesTheTeacherForcedCells) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != 2) GTEST_SKIP() << "run with mpirun -np 2";
  const auto [tp, cp] = GetParam();
  ParallelConfig pc;
  pc.tp = tp;
  pc.cp = cp;
  pc.dp = 0;
  auto ctx = make_parallel_context(MPI_COMM_WORLD, pc);
  auto ops = make_cpu_ops(DType::F64, 8);
  EvalModel em;
  em.model = tiny_model();
  em.rope.theta = 1000;
  EvalGrid g = tiny_grid();
  g.spec.task = SynthTask::Passkey;
  g.spec.value_len = 1;
  g.samples = 8;
  const std::vector<EvalCell> forced = evaluate_grid(g, em, *ctx, *ops, [&](Llama& m) { two_digit_weights(m, *ops); });
  auto model = make_decoding_model(em, *ctx, *ops, [&](Llama& m) { two_digit_weights(m, *ops); });
  const std::vector<EvalCell> gen = evaluate_grid_generated(g, *model, em.rope, *ctx, *ops);
  ASSERT_EQ(gen.size(), forced.size());
  int64_t right = 0, total = 0;
  for (size_t i = 0; i < gen.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "tp " << tp << " cp " << cp << " length " << gen[i].length << " depth "
                                    << gen[i].depth);
    EXPECT_EQ(gen[i].length, forced[i].length);
    EXPECT_EQ(gen[i].depth, forced[i].depth);
    EXPECT_EQ(gen[i].samples, forced[i].samples);
    EXPECT_EQ(gen[i].tokens, forced[i].tokens);
    EXPECT_EQ(gen[i].correct, forced[i].correct);
    EXPECT_EQ(gen[i].tokens_correct, forced[i].tokens_correct);
    right += gen[i].correct;
    total += gen[i].samples;
  }
  EXPECT_GT(right, 0) << "some prompts right: the comparison is not of zeros alone";
  EXPECT_LT(right, total) << "and some wrong";
}

INSTANTIATE_TEST_SUITE_P(Layouts, EvalGridLayouts,
                         ::testing::Values(std::make_pair(1, 1), std::make_pair(2, 1), std::make_pair(1, 2)));

}  // namespace
}  // namespace lct
