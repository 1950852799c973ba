// evaluate_ruler under mpirun -np 2: a seeded random byte-level model generates the RULER prompts of
// two tasks; dp = 2 (prompts shared out), cp = 2 (ring prefill, merged decode) and tp = 2 must give
// the same cells as one rank alone, and cp = 2 the very same generated texts. A model built to spell
// one answer gives a nonzero score, which dp = 2 must sum over its replicas.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <functional>
#include <set>

#include "core/error.h"
#include "data/tokenizer.h"
#include "eval/ruler_eval.h"
#include "model/params.h"

namespace lct {
namespace {

ModelConfig byte_model() {
  ModelConfig m;
  m.vocab_size = 258;
  m.dim = 32;
  m.n_layers = 2;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 8;
  m.ffn_dim = 48;
  m.init_std = 0.4;
  return m;
}

// Changes this rank's slice of the seeded parameters before they are uploaded.
using WeightEdit = std::function<void(const ParamTable&, std::vector<float>&)>;

std::unique_ptr<Llama> model_for(ParallelContext& ctx, Ops& ops, const WeightEdit& edit) {
  const Layout& L = ctx.layout;
  ModelShape shape;
  shape.tp = L.tp;
  shape.tp_rank = ctx.me().tp_rank;
  shape.cp = L.cp;
  shape.cp_rank = ctx.me().cp_rank;
  shape.seq_len = 2 * L.cp * L.tp;
  shape.recompute = true;
  RopeConfig r;
  auto m = std::make_unique<Llama>(byte_model(), r, shape, ops, L.tp > 1 ? ctx.tp.get() : nullptr,
                                   L.cp > 1 ? ctx.cp.get() : nullptr);
  std::vector<float> f;
  init_params_host(m->table(), m->config(), 11, f);
  f.resize(size_t(m->params().flat.numel()), 0.0f);
  if (edit) edit(m->table(), f);
  ops.from_host(m->params().flat, f.data());
  return m;
}

struct RulerRun {
  std::vector<RulerCell> cells;
  std::vector<std::string> outputs;
  std::vector<RulerPrediction> predictions;  // world rank 0 only
};

RulerGrid grid(const std::string& task, const Tokenizer& tok) {
  RulerGrid g;
  g.task = &ruler_task(task, "test");
  g.lengths = {2048};
  g.depths = {0, 100};
  g.samples = 2;
  g.seed = 3;
  g.tokenizer = &tok;
  return g;
}

// The text as a prediction line holds it (bytes that are not UTF-8 become U+FFFD).
std::string through_json(const std::string& text) {
  RulerPrediction p;
  p.prediction = text;
  return ruler_prediction_from_json(ruler_prediction_json(p)).prediction;
}

RulerRun run(MPI_Comm comm, int tp, int cp, const std::string& task, const WeightEdit& edit = nullptr) {
  ParallelConfig pc;
  pc.tp = tp;
  pc.cp = cp;
  pc.dp = 0;
  auto ctx = make_parallel_context(comm, pc);
  auto ops = make_cpu_ops(DType::F32, 16);
  auto model = model_for(*ctx, *ops, edit);
  auto tok = make_tokenizer("bytes");
  const RulerGrid g = grid(task, *tok);
  RulerRun r;
  r.cells = evaluate_ruler(g, *model, RopeConfig{}, *ctx, *ops, &r.outputs, &r.predictions);
  return r;
}

TEST(RulerEval, LayoutsAgreeWithOneRank) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != 2) GTEST_SKIP() << "run with mpirun -np 2";
  for (const std::string task : {"niah_single_1", "vt"}) {
    SCOPED_TRACE(task);
    const RulerRun one = run(MPI_COMM_SELF, 1, 1, task);
    ASSERT_EQ(one.outputs.size(), 4u);
    for (auto [tp, cp] : std::vector<std::pair<int, int>>{{1, 1}, {1, 2}, {2, 1}}) {
      SCOPED_TRACE(testing::Message() << "tp " << tp << " cp " << cp);
      const RulerRun r = run(MPI_COMM_WORLD, tp, cp, task);
      ASSERT_EQ(r.cells.size(), one.cells.size());
      for (size_t i = 0; i < r.cells.size(); ++i) {
        EXPECT_EQ(r.cells[i].depth, one.cells[i].depth);
        EXPECT_EQ(r.cells[i].samples, 2);
        EXPECT_DOUBLE_EQ(r.cells[i].score_sum, one.cells[i].score_sum);
      }
      if (tp * cp == 2) {
        EXPECT_EQ(r.outputs, one.outputs) << "the same greedy text on every layout";
      } else {
        EXPECT_EQ(r.outputs.size(), 2u) << "dp = 2: each replica generates half the prompts";
      }
      // Every prompt's record reaches world rank 0 once, in index order, from whichever replica made it.
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      if (rank != 0) {
        EXPECT_TRUE(r.predictions.empty());
        continue;
      }
      ASSERT_EQ(r.predictions.size(), one.predictions.size());
      for (size_t i = 0; i < r.predictions.size(); ++i) {
        const RulerPrediction &p = r.predictions[i], &q = one.predictions[i];
        EXPECT_EQ(p.index, int64_t(i));
        EXPECT_EQ(p.prediction, through_json(one.outputs[i])) << "the text this replica generated";
        EXPECT_EQ(p.prediction, q.prediction);
        EXPECT_EQ(p.depth, q.depth);
        EXPECT_EQ(p.references, q.references);
        EXPECT_EQ(p.hits, q.hits);
        EXPECT_DOUBLE_EQ(p.score, q.score);
      }
    }
    int nonempty = 0;
    for (const std::string& o : one.outputs) nonempty += !o.empty();
    EXPECT_GT(nonempty, 0) << "the model generated something";
    ASSERT_EQ(one.predictions.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(one.predictions[i].depth, i < 2 ? 0 : 100) << "depth-major: 2 samples per depth";
      EXPECT_EQ(one.predictions[i].length, 2048);
      EXPECT_FALSE(one.predictions[i].references.empty());
      EXPECT_EQ(one.predictions[i].hits.size(), one.predictions[i].references.size());
    }
  }
}

// Weights under which greedy generation continues a prompt ending in chain[0] with chain[1], chain[2],
// ...: the layers add nothing to the residual (zero o_proj and down_proj), chain[k] embeds as unit
// vector k, and the LM head maps unit vector k to chain[k + 1]. The chain's tokens must be distinct.
void spelling_weights(const std::vector<int32_t>& chain, const ParamTable& table, std::vector<float>& f) {
  for (const ParamSpec& p : table.specs) {
    float* w = f.data() + p.offset;
    const bool embed = p.name == "model.embed_tokens.weight", head = p.name == "lm_head.weight";
    if (head || p.name.find("o_proj") != std::string::npos || p.name.find("down_proj") != std::string::npos)
      std::fill(w, w + p.local_numel(), 0.0f);
    if (!embed && !head) continue;
    for (size_t k = 0; k + 1 < chain.size(); ++k) {
      const int32_t v = embed ? chain[k] : chain[k + 1];  // row v reads (head) or holds (embedding) unit k
      if (v < p.row0 || v >= p.row0 + p.valid_rows) continue;  // another tp rank's vocabulary slice
      float* row = w + (v - p.row0) * p.local_cols;
      if (embed) std::fill(row, row + p.local_cols, 0.0f);
      row[k] = 1.0f;
    }
  }
}

// The seeded random model scores 0 everywhere, so it cannot tell a dp replica's scores from the
// sum over replicas. This model generates one variable name of the last prompt (then EOS) after
// every vt prompt: that prompt scores 1/5, and replica 0 (rank 0, which reports) must receive it
// from replica 1.
TEST(RulerEval, DpSumsNonzeroScoresOverReplicas) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != 2) GTEST_SKIP() << "run with mpirun -np 2";
  auto tok = make_tokenizer("bytes");
  const RulerGrid g = grid("vt", *tok);
  const int64_t last = int64_t(g.depths.size()) * g.samples - 1;  // replica 1's last, at the last depth
  const RulerSample s = make_ruler_sample(*g.task, *tok, g.essay, g.lengths[0], g.depths.back(), g.seed, uint64_t(last),
                                          g.control);
  std::string name;  // one with 5 distinct letters, so that the chain's tokens are distinct
  std::vector<int32_t> chain;
  for (const std::string& a : s.answers) {
    chain = tok->encode(a, false);
    chain.insert(chain.begin(), s.tokens.back());
    chain.push_back(tok->eos_id());
    if (std::set<int32_t>(chain.begin(), chain.end()).size() == chain.size()) {
      name = a;
      break;
    }
  }
  ASSERT_FALSE(name.empty()) << "the last prompt has a variable name of distinct letters";
  const WeightEdit spell = [&](const ParamTable& t, std::vector<float>& f) { spelling_weights(chain, t, f); };
  const RulerRun one = run(MPI_COMM_SELF, 1, 1, "vt", spell);
  ASSERT_EQ(one.outputs.size(), size_t(last + 1));
  EXPECT_EQ(one.outputs[size_t(last)], name);
  EXPECT_DOUBLE_EQ(one.cells.back().score_sum, 0.2) << "the last prompt finds one of its 5 variables";
  // Its record says which reference it found.
  const RulerPrediction& p = one.predictions.at(size_t(last));
  ASSERT_EQ(p.references, s.answers);
  for (size_t k = 0; k < p.references.size(); ++k) EXPECT_EQ(p.hits[k], p.references[k] == name ? 1 : 0) << k;
  EXPECT_DOUBLE_EQ(p.score, 0.2);
  const RulerRun dp = run(MPI_COMM_WORLD, 1, 1, "vt", spell);
  ASSERT_EQ(dp.cells.size(), one.cells.size());
  for (size_t i = 0; i < dp.cells.size(); ++i) EXPECT_DOUBLE_EQ(dp.cells[i].score_sum, one.cells[i].score_sum) << i;
}

// A prediction line survives JSON: quotes, newlines, and bytes that are not UTF-8 (a byte-level
// model can stop inside a character; those become U+FFFD rather than an invalid file).
TEST(RulerEval, PredictionLinesRoundTrip) {
  RulerPrediction p;
  p.length = 512;
  p.depth = -1;
  p.index = 7;
  p.references = {"lake", "say \"hi\""};
  p.prediction = " lake,\n say \"hi\" \xe2\x82";
  p.score = 1.0;
  p.hits = {1, 1};
  const std::string line = ruler_prediction_json(p);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.rfind("{\"index\":7,\"length\":512,\"depth\":-1,\"pred\":", 0), 0u) << line;
  const RulerPrediction q = ruler_prediction_from_json(line);
  EXPECT_EQ(q.index, 7);
  EXPECT_EQ(q.length, 512);
  EXPECT_EQ(q.depth, -1);
  EXPECT_EQ(q.references, p.references);
  EXPECT_EQ(q.prediction, " lake,\n say \"hi\" \xef\xbf\xbd");
  EXPECT_EQ(q.hits, p.hits);
  EXPECT_DOUBLE_EQ(q.score, 1.0);
  EXPECT_THROW(ruler_prediction_from_json("{\"index\": 1}"), Error);
}

}  // namespace
}  // namespace lct
