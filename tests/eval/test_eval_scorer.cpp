// The answer scorer's arithmetic (argmax and -log p over vocabulary slices, as tp ranks hold them),
// exact-match scoring on a tiny model with known logits, niah.csv and the printed table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "core/rng.h"
#include "eval/answer_scorer.h"
#include "eval/niah_table.h"
#include "eval/prompts.h"
#include "test_util.h"

namespace lct {
namespace {

// The reference: argmax (lowest id on ties) and -log softmax over the whole row.
void full_row(const std::vector<double>& x, int32_t target, int64_t& argmax, double& nll) {
  argmax = 0;
  double m = x[0], s = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] > m) m = x[i], argmax = int64_t(i);
  for (double v : x) s += std::exp(v - m);
  nll = m + std::log(s) - x[size_t(target)];
}

TEST(RowStats, SlicesCombineToTheWholeRow) {
  Rng rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t V = 1 + int64_t(rng.below(50));
    std::vector<double> x(static_cast<size_t>(V));
    for (auto& v : x) v = 5 * rng.normal();
    if (trial % 3 == 0) x[rng.below(uint64_t(V))] = x[rng.below(uint64_t(V))];  // ties happen
    const int32_t target = int32_t(rng.below(uint64_t(V)));
    int64_t want_arg;
    double want_nll;
    full_row(x, target, want_arg, want_nll);
    const int tp = 1 + int(rng.below(4));
    std::vector<RowStats> slices;
    for (int r = 0; r < tp; ++r) {  // uneven slices, some empty, any order
      const int64_t b = V * r / tp, e = V * (r + 1) / tp;
      slices.push_back(slice_row_stats(x.data() + b, e - b, b, target));
    }
    std::reverse(slices.begin(), slices.end());
    const RowStats c = combine_row_stats(slices);
    EXPECT_EQ(c.argmax, want_arg) << "trial " << trial;
    ASSERT_TRUE(c.has_target);
    EXPECT_NEAR(row_nll(c), want_nll, 1e-9 * (1 + std::fabs(want_nll)));
  }
}

TEST(RowStats, TiesGoToTheLowestIdAcrossSlices) {
  const std::vector<double> a = {1, 3, 2}, b = {3, 0};
  const RowStats c = combine_row_stats({slice_row_stats(b.data(), 2, 3, 4), slice_row_stats(a.data(), 3, 0, 4)});
  EXPECT_EQ(c.argmax, 1);
  EXPECT_NEAR(row_nll(c), 3 + std::log(std::exp(-2) + 1 + std::exp(-1) + 1 + std::exp(-3)) - 0, 1e-12);
}

// A tiny model whose logits are known: 1 layer, all weights zero except the LM head, so the final
// hidden state is RMSNorm(embedding) and the logits are lm_head . hidden. With embedding row t =
// e_(t mod C) and lm_head row v = e_(v mod C) * (v < C ? 1 : 0.5), token t predicts t mod C.
TEST(Scorer, ExactMatchOnATinyModelWithKnownLogits) {
  ModelConfig m;
  m.vocab_size = 16;
  m.dim = 8;
  m.n_layers = 1;
  m.n_heads = 2;
  m.n_kv_heads = 1;
  m.head_dim = 4;
  m.ffn_dim = 8;
  RopeConfig r;
  ModelShape shape;
  shape.micro_batch = 2;
  shape.seq_len = 6;
  auto ops = make_cpu_ops(DType::F64, 4);
  Llama model(m, r, shape, *ops, nullptr, nullptr);
  std::vector<double> p(size_t(model.table().total), 0.0);
  for (const ParamSpec& s : model.table().specs) {
    double* w = p.data() + s.offset;
    if (s.name == "model.embed_tokens.weight")
      for (int64_t t = 0; t < 16; ++t) w[t * 8 + t % 8] = 1;
    else if (s.name == "lm_head.weight")
      for (int64_t v = 0; v < 16; ++v) w[v * 8 + v % 8] = v < 8 ? 1 : 0.5;
    else if (s.is_vector)
      for (int64_t i = 0; i < s.local_rows; ++i) w[i] = 1;
  }
  ops->from_host(model.params().flat, p.data());
  MicroBatch mb;
  mb.inputs = {0, 9, 2, 3, 12, 5, /* second sequence */ 7, 7, 15, 1, 1, 4};
  mb.targets.assign(12, -1);
  model.forward(mb);
  // Rows predicting "answers": row n predicts inputs[n] mod 8.
  std::vector<AnswerRow> rows = {{0, 1, 1}, {0, 2, 2}, {0, 4, 5}, {1, 8, 7}, {1, 11, 4}};
  const std::vector<RowStats> s = score_answer_rows(model, *ops, nullptr, rows);
  ASSERT_EQ(s.size(), rows.size());
  const std::vector<int64_t> want = {1, 2, 4, 7, 4};
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(s[i].argmax, want[i]) << "row " << rows[i].row;
    EXPECT_EQ(s[i].argmax == rows[i].target, i != 2) << "row " << rows[i].row;
    // hidden = sqrt(8) e_k (RMSNorm of a unit vector), logits: sqrt(8) at k, sqrt(8)/2 at k+8.
    const double h = std::sqrt(8.0 / (1.0 + 8 * 1e-5));
    const double lse = std::log(14.0 + std::exp(h) + std::exp(h / 2));
    const double t = rows[i].target % 8 == want[i] % 8 ? (rows[i].target < 8 ? h : h / 2) : 0.0;
    EXPECT_NEAR(row_nll(s[i]), lse - t, 1e-6) << "row " << rows[i].row;
  }
}

TEST(NiahCsv, HeaderAndOneLinePerCellInGridOrder) {
  std::vector<EvalCell> cells;
  for (int64_t L : {256, 512})
    for (int64_t d : {0, 50, 100}) {
      EvalCell c;
      c.length = L;
      c.depth = d;
      c.samples = 4;
      c.correct = d == 50 ? 3 : 4;
      c.tokens = 16;
      c.tokens_correct = d == 50 ? 13 : 16;
      c.nll_sum = 1.6;
      cells.push_back(c);
    }
  const std::string csv = niah_csv_text(cells);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "length,depth,samples,accuracy,token_accuracy,answer_nll");
  EXPECT_NE(csv.find("\n256,0,4,1.000000,1.000000,0.100000\n256,50,4,0.750000,0.812500,0.100000\n"), std::string::npos)
      << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  const std::string path = test::scratch_dir("niah_csv") + "/niah.csv";
  write_niah_csv(path, cells);
  EXPECT_EQ(test::read_file(path), csv);
  const std::string table = niah_table_text(cells, "niah");
  EXPECT_NE(table.find("depth \\ length      256      512"), std::string::npos) << table;
  EXPECT_NE(table.find("          50%      75%      75%"), std::string::npos) << table;
  EXPECT_NE(table.find("mean    91.7%    91.7%"), std::string::npos) << table;
}

TEST(EvalPrompts, SeededApartPerLengthAndReproducible) {
  SynthSpec train;
  train.task = SynthTask::Kv;
  train.needles = 4;
  train.min_needles = 1;
  train.queries = 4;
  train.filler = "phrases";
  const SynthSpec s = eval_spec_for_task("niah", train);
  EXPECT_EQ(s.needles, 1);
  EXPECT_EQ(s.queries, 1);
  EXPECT_EQ(s.filler, "phrases");
  const auto a = make_eval_prompts(s, 256, {0, 50, 100}, 3, 777, true);
  ASSERT_EQ(a.size(), 9u);
  EXPECT_EQ(a[4].depth, 50);
  EXPECT_EQ(a[4].sample, 1);
  EXPECT_EQ(a[4].tokens.size(), 256u);
  EXPECT_EQ(a[4].answer_end, 256);
  EXPECT_EQ(a[4].answer_end - a[4].answer_begin, 4);
  // Adding depths does not change the prompts of the others' indices; another seed changes them.
  const auto b = make_eval_prompts(s, 256, {0, 50, 100}, 3, 777, true);
  EXPECT_EQ(a[7].tokens, b[7].tokens);
  EXPECT_NE(a[7].tokens, make_eval_prompts(s, 256, {0, 50, 100}, 3, 778, true)[7].tokens);
  // The control has the same answers but no needle.
  const auto c = make_eval_prompts(s, 256, {0, 50, 100}, 3, 777, false);
  EXPECT_EQ(std::count(c[0].tokens.begin(), c[0].tokens.end(), SynthVocab::kVal), 1) << "only the question's VAL";
  EXPECT_EQ(eval_spec_for_task("passkey", train).value_len, 5);
  EXPECT_EQ(eval_spec_for_task("kv", train).needles, 4);
  EXPECT_THROW(eval_spec_for_task("ruler", train), InputError);
}

}  // namespace
}  // namespace lct
