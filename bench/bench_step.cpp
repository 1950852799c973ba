// bench_step: where the time of one training step goes. Builds the deck's model on the cpu backend
// (single rank, no MPI), runs warm-up + timed steps of forward_backward + AdamW on random tokens,
// and prints the wall time per step of every op (through the TimedOps decorator) with its share
// and, for the GEMM-shaped ops, the achieved GFLOP/s (model FLOPs, docs/PERFORMANCE.md).
//
// usage: bench_step DECK [--steps N] [--warmup W] [--json FILE] [--section.key=value ...]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "bench/timed_ops.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/rng.h"
#include "deck/config.h"
#include "deck/deck.h"
#include "model/llama.h"
#include "optim/optimizer.h"
#include "train/weights.h"

namespace {

struct Args {
  std::string deck, json;
  int steps = 5, warmup = 1;
  std::vector<std::string> overrides;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&](const char* name) {
      if (i + 1 >= argc) throw lct::InputError(lct::str(name, " needs a value"));
      return std::string(argv[++i]);
    };
    if (s == "--steps") {
      a.steps = std::atoi(value("--steps").c_str());
    } else if (s == "--warmup") {
      a.warmup = std::atoi(value("--warmup").c_str());
    } else if (s == "--json") {
      a.json = value("--json");
    } else if (s.rfind("--", 0) == 0) {
      a.overrides.push_back(s);
    } else if (a.deck.empty()) {
      a.deck = s;
    } else {
      throw lct::InputError(lct::str("unexpected argument '", s, "'"));
    }
  }
  if (a.deck.empty() || a.steps < 1 || a.warmup < 0)
    throw lct::InputError(
        "usage: bench_step DECK [--steps N >= 1] [--warmup W >= 0] [--json FILE] [--section.key=value ...]");
  return a;
}

// Model FLOPs of one op class per step (forward + backward as one figure where both are listed).
struct Flops {
  double linear_fwd = 0, linear_bwd = 0, lmhead_fwd = 0, lmhead_bwd = 0, attn_fwd = 0, attn_bwd = 0;
};

Flops model_flops(const lct::ModelConfig& m, int64_t B, int64_t T) {
  const double N = double(B) * T;
  const double per_layer = double(m.dim) * m.n_heads * m.head_dim * 2 +     // wq, wo
                           double(m.dim) * m.n_kv_heads * m.head_dim * 2 +  // wk, wv
                           double(m.dim) * m.ffn_dim * 3;                    // gate, up, down
  Flops f;
  f.linear_fwd = 2 * N * per_layer * m.n_layers;
  f.linear_bwd = 2 * f.linear_fwd;
  f.lmhead_fwd = 2 * N * double(m.dim) * m.vocab_size;
  f.lmhead_bwd = 2 * f.lmhead_fwd;
  f.attn_fwd = 2.0 * B * m.n_heads * double(T) * T * m.head_dim * m.n_layers;  // causal half of 4BHT^2D
  f.attn_bwd = 2 * f.attn_fwd;
  return f;
}

// CPU seconds of the whole process (all threads): under a loaded machine, with one thread, this is
// close to the step time an idle machine would give.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int run(const Args& a) {
  lct::Deck deck = lct::Deck::from_file(a.deck, a.overrides);
  lct::resolve_deck(deck);
  const lct::Config c = lct::config_from_deck(deck);
  auto cpu = lct::make_cpu_ops(lct::DType::F32, int(c.run.attention_tile));
  lct::bench::TimedOps ops(*cpu);
  lct::ModelShape shape;
  shape.micro_batch = c.train.micro_batch;
  shape.seq_len = c.train.seq_len;
  shape.recompute = c.train.recompute == "layer";
  shape.attention_tile = int(c.run.attention_tile);
  lct::ZeroParams params(0, ops, lct::ParamTable::build(c.model, 1, 0), nullptr, nullptr, true);
  lct::Llama model(c.model, c.rope, shape, ops, nullptr, nullptr, &params);
  lct::init_random_weights(model, ops, c);
  lct::Optimizer optim(c.optim, ops, params, false);

  const int64_t N = model.tokens_local();
  lct::Rng rng(uint64_t(c.run.seed));
  lct::MicroBatch mb;
  for (int64_t n = 0; n < N; ++n) {
    mb.inputs.push_back(int32_t(rng.below(uint64_t(c.model.vocab_size))));
    mb.targets.push_back(int32_t(rng.below(uint64_t(c.model.vocab_size))));
  }
  std::vector<double> step_s, cpu_s;
  double loss = 0;
  for (int s = 0; s < a.warmup + a.steps; ++s) {
    if (s == a.warmup) ops.reset();
    const double t0 = lct::now_seconds(), c0 = process_cpu_seconds();
    params.zero_grads();
    loss = model.forward_backward(mb, 1.0 / double(N)) / double(N);
    optim.step(c.train.lr, c.train.grad_clip);
    if (s >= a.warmup) {
      step_s.push_back(lct::now_seconds() - t0);
      cpu_s.push_back(process_cpu_seconds() - c0);
    }
  }
  std::vector<double> sorted = step_s;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  double mean = 0;
  for (double x : step_s) mean += x / double(step_s.size());
  std::sort(cpu_s.begin(), cpu_s.end());
  const double cpu_median = cpu_s[cpu_s.size() / 2];
  const double per_step = 1.0 / double(a.steps);

  const Flops f = model_flops(c.model, c.train.micro_batch, c.train.seq_len);
  auto flops_of = [&](const std::string& op) -> double {
    if (op == "linear fwd") return f.linear_fwd;
    if (op == "linear bwd") return f.linear_bwd;
    if (op == "lm head + loss fwd") return f.lmhead_fwd;
    if (op == "lm head + loss bwd") return f.lmhead_bwd;
    if (op == "attention fwd") return f.attn_fwd;
    if (op == "attention bwd") return f.attn_bwd;
    return 0;
  };
  double total_ops = 0;
  for (const auto& kv : ops.times()) total_ops += kv.second.seconds * per_step;
  std::printf("bench_step %s: %lld tokens/step (micro_batch %lld x seq %lld), %d threads, loss %.4f\n",
              a.deck.c_str(), (long long)N, (long long)c.train.micro_batch, (long long)c.train.seq_len,
              omp_get_max_threads(), loss);
  std::printf("step: median %.3f s over %d steps (warm-up %d excluded), %.1f tokens/s, process CPU %.3f s/step; "
              "peak RSS %.2f GiB\n",
              median, a.steps, a.warmup, double(N) / median, cpu_median, double(lct::peak_rss_bytes()) / double(1 << 30));
  std::printf("per op (mean over the timed steps; share of the mean step, %.3f s):\n", mean);
  std::printf("%-22s %8s %10s %7s %10s\n", "op", "calls", "ms/step", "share", "GFLOP/s");
  nlohmann::ordered_json j;
  j["deck"] = a.deck;
  j["tokens_per_step"] = N;
  j["threads"] = omp_get_max_threads();
  j["step_seconds_median"] = median;
  j["step_seconds"] = step_s;
  j["cpu_seconds_median"] = cpu_median;
  j["peak_rss_bytes"] = lct::peak_rss_bytes();
  for (const auto& kv : ops.times()) {
    const double s = kv.second.seconds * per_step;
    const double fl = flops_of(kv.first);
    std::printf("%-22s %8.0f %10.1f %6.1f%% ", kv.first.c_str(), double(kv.second.calls) * per_step, s * 1e3,
                100 * s / mean);
    if (fl > 0)
      std::printf("%10.1f\n", fl / s * 1e-9);
    else
      std::printf("%10s\n", "");
    j["ops"][kv.first] = {{"ms_per_step", s * 1e3}, {"gflops", fl > 0 ? fl / s * 1e-9 : 0.0}};
  }
  std::printf("%-22s %8s %10.1f %6.1f%%\n", "(outside ops)", "", (mean - total_ops) * 1e3,
              100 * (mean - total_ops) / mean);
  if (!a.json.empty()) {
    std::ofstream out(a.json);
    out << j.dump(1) << "\n";
    if (!out) throw lct::Error(lct::kExitFailure, lct::str("cannot write ", a.json));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const lct::Error& e) {
    std::fprintf(stderr, "bench_step: %s\n", e.what());
    return e.code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_step: %s\n", e.what());
    return 1;
  }
}
