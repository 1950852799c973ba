// A tiny model learns a task that needs attention: copying a random sequence. The second half of
// each sample repeats the first; only the copied half counts in the loss, and it is predictable
// only by looking back (an induction head). Chance is ln(vocab) nats per token.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "model/llama.h"
#include "optim/optimizer.h"
#include "model/params.h"

namespace lct {
namespace {

TEST(Learning, TinyModelLearnsToCopy) {
  ModelConfig m;
  m.vocab_size = 16;
  m.dim = 48;
  m.n_layers = 2;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 12;
  m.ffn_dim = 96;
  RopeConfig r;
  r.theta = 10000;
  ModelShape s;
  s.micro_batch = 16;
  s.seq_len = 32;
  auto ops = make_cpu_ops(DType::F32);
  ZeroParams params(0, *ops, ParamTable::build(m, 1, 0), nullptr, nullptr, true);
  Llama model(m, r, s, *ops, nullptr, nullptr, &params);
  std::vector<float> init;
  init_params_host(model.table(), m, 3, init);
  ops->from_host(Tensor(model.params().flat.ptr, DType::F32, {model.table().total}), init.data());
  OptimConfig oc;
  oc.weight_decay = 0.0;
  Optimizer opt(oc, *ops, params, false);

  const int half = 16;  // token 0 separates the two halves: [x1..x15, 0, x1..x15, 0]
  Rng rng(1);
  auto batch = [&] {
    MicroBatch mb;
    for (int b = 0; b < s.micro_batch; ++b) {
      std::vector<int32_t> seq(33);
      for (int i = 0; i < half - 1; ++i) seq[i] = seq[i + half] = 1 + int32_t(rng.below(15));
      seq[half - 1] = seq[2 * half - 1] = 0;
      seq[32] = 0;
      for (int t = 0; t < 32; ++t) {
        mb.inputs.push_back(seq[t]);
        // Targets of the copied half only (positions half .. 2*half-2 predict x2 .. x15, 0).
        mb.targets.push_back(t >= half ? seq[t + 1] : -1);
      }
    }
    return mb;
  };
  double loss = 0;
  const int steps = 400;
  for (int step = 1; step <= steps; ++step) {
    MicroBatch mb = batch();
    int64_t n = 0;
    for (int32_t t : mb.targets) n += t >= 0;
    params.zero_grads();
    loss = model.forward_backward(mb, 1.0 / double(n)) / double(n);
    const double lr = 3e-3 * std::min(1.0, step / 20.0);
    opt.step(lr, 1.0);
  }
  std::printf("copy task: loss %.4f after %d steps (chance %.4f)\n", loss, steps, std::log(15.0));
  EXPECT_LT(loss, 0.05) << "the model did not learn to copy (chance is ln 15 = 2.71)";
}

}  // namespace
}  // namespace lct
