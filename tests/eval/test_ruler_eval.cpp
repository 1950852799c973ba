// evaluate_ruler under mpirun -np 2: a seeded random byte-level model generates the RULER prompts of
// two tasks; dp = 2 (prompts shared out), cp = 2 (ring prefill, merged decode) and tp = 2 must give
// the same cells as one rank alone, and cp = 2 the very same generated texts.
#include <gtest/gtest.h>
#include <mpi.h>

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

std::unique_ptr<Llama> model_for(ParallelContext& ctx, Ops& ops) {
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
  ops.from_host(m->params().flat, f.data());
  return m;
}

struct RulerRun {
  std::vector<RulerCell> cells;
  std::vector<std::string> outputs;
};

RulerRun run(MPI_Comm comm, int tp, int cp, const std::string& task) {
  ParallelConfig pc;
  pc.tp = tp;
  pc.cp = cp;
  pc.dp = 0;
  auto ctx = make_parallel_context(comm, pc);
  auto ops = make_cpu_ops(DType::F32, 16);
  auto model = model_for(*ctx, *ops);
  auto tok = make_tokenizer("bytes");
  RulerGrid g;
  g.task = &ruler_task(task, "test");
  g.lengths = {2048};
  g.depths = {0, 100};
  g.samples = 2;
  g.seed = 3;
  g.tokenizer = tok.get();
  RulerRun r;
  r.cells = evaluate_ruler(g, *model, RopeConfig{}, *ctx, *ops, &r.outputs);
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
    }
    int nonempty = 0;
    for (const std::string& o : one.outputs) nonempty += !o.empty();
    EXPECT_GT(nonempty, 0) << "the model generated something";
  }
}

}  // namespace
}  // namespace lct
