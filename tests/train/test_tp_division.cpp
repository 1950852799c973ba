// Tensor parallelism really divides the work: weights, gradients and optimizer state per rank are
// 1/tp of tp = 1 (within 5%), the activation peak per rank falls, and no message of the loss
// computation grows with the vocabulary (the bytes a step sends do not change with vocab_size).
#include <gtest/gtest.h>

#include "model/params.h"
#include "train_harness.h"

namespace lct::test {
namespace {

TEST(TensorParallelDivision, ParameterBytesPerRankAreOneOverTp) {
  ModelConfig m;
  m.vocab_size = 32000;
  m.dim = 512;
  m.n_layers = 8;
  m.n_heads = 8;
  m.n_kv_heads = 4;
  m.head_dim = 64;
  m.ffn_dim = 1408;
  const int64_t full = ParamTable::build(m, 1, 0).total;
  for (int tp : {2, 4})
    for (int r = 0; r < tp; ++r) {
      const int64_t mine = ParamTable::build(m, tp, r).total;  // weights; grads, master, moments follow it
      EXPECT_LE(std::abs(double(mine) - double(full) / tp), 0.05 * double(full) / tp) << "tp " << tp;
    }
}

nlohmann::json last_row(const std::string& out) { return read_metrics(out).rbegin()->second; }

TEST(TensorParallelDivision, ActivationPeakAndMessagesPerRank) {
  const std::string dir = scratch_dir("tp_division");
  const std::string corpus = dir + "/corpus.bin";
  write_markov_corpus(corpus, 64, 40000, 3);
  // Activations dominate: long sequences, a wide MLP.
  const std::vector<std::string> shape = {"--train.seq_len=512", "--model.dim=64", "--model.ffn_dim=256",
                                          "--model.n_heads=4", "--model.n_kv_heads=4", "--train.steps=2",
                                          "--train.grad_accum=1", "--model.vocab_size=64"};
  auto run = [&](const std::string& name, int np, std::vector<std::string> ov) {
    ov.insert(ov.begin(), shape.begin(), shape.end());  // the run's own overrides come last and win
    const std::string d = dir + "/" + name;
    CommandResult r = run_lctrain(np, dir, tiny_deck(corpus, d), ov);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return last_row(d);
  };
  nlohmann::json t1 = run("tp1", 1, {}), t2 = run("tp2", 2, {"--parallel.tp=2"});
  const double dev1 = t1["peak_device_bytes"], dev2 = t2["peak_device_bytes"];
  std::printf("peak backend bytes per rank: tp=1 %.1f MiB, tp=2 %.1f MiB (ratio %.2f)\n", dev1 / 1048576,
              dev2 / 1048576, dev2 / dev1);
  EXPECT_GT(dev2, 0.0) << "no peak recorded: the bound below would hold vacuously";
  EXPECT_LT(dev2, 0.6 * dev1) << "tp = 2 must roughly halve the per-rank peak";
  // The same model with a 16x larger vocabulary sends exactly the same bytes per step.
  nlohmann::json big = run("tp2_bigvocab", 2, {"--parallel.tp=2", "--model.vocab_size=1024"});
  const std::string deck = read_file(dir + "/tp2_bigvocab/effective.deck");
  ASSERT_NE(deck.find("model.vocab_size = 1024\n"), std::string::npos) << "the larger vocabulary did not take effect";
  EXPECT_GT(big["peak_device_bytes"].get<double>(), t2["peak_device_bytes"].get<double>());
  EXPECT_EQ(t2["bytes_intra_node_total"].get<int64_t>(), big["bytes_intra_node_total"].get<int64_t>());
}

}  // namespace
}  // namespace lct::test
