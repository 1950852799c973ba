// Op-level benchmarks of the cpu backend (Google Benchmark), through the Ops interface as the model
// calls it. Each benchmark reports a rate counter: GFLOP/s for the GEMM-shaped ops (FLOP formulas
// below), GB/s for the bandwidth-bound ones. Shapes are those of bench/configs/llama50m_*.deck
// (dim 512, 8 query / 4 kv heads of 64, SwiGLU 1408, vocab 32000) at 4096 tokens per step; a square
// sgemm measures the machine's fp32 GEMM rate in the same run (the MFU denominator).
//
// FLOPs:
//   GEMM y[N,M] = x[N,K] W[M,K]^T     forward 2NKM; backward (dx and dW) 4NKM
//   causal attention, B x Hq heads    forward 2*B*Hq*T^2*D (QK^T and PV over the T^2/2 visible pairs);
//                                     backward 2x forward (dV, dP, dQ, dK; the recomputed P not counted)
//   LM head + loss                    6*N*C*V (logits, dx, dW)
// Run: OMP_NUM_THREADS=2 bin/bench_ops [--benchmark_filter=attention]. tools/bench_torch.py
// attention times torch's scaled_dot_product_attention on the same shapes.
#include <benchmark/benchmark.h>

#include <omp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "ops/cpu/eigen_util.h"
#include "ops/cpu/gemm.h"
#include "ops/ops.h"

namespace {

using lct::DType;
using lct::Ops;
using lct::Tensor;

// A backend-owned buffer, freed with its owner.
class Buffer {
 public:
  Buffer(Ops& ops, DType t, std::initializer_list<int64_t> dims) : ops_(ops), t_(nullptr, t, dims) {
    t_.ptr = ops_.alloc(t_.bytes());
  }
  ~Buffer() { ops_.free(t_.ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  const Tensor& operator*() const { return t_; }
  float* f() const { return t_.data<float>(); }
  int32_t* i() const { return t_.data<int32_t>(); }

 private:
  Ops& ops_;
  Tensor t_;
};

void fill(const Buffer& b, uint64_t seed, double scale) {
  lct::Rng rng(seed);
  float* p = b.f();
  for (int64_t n = 0; n < (*b).numel(); ++n) p[n] = float(rng.normal() * scale);
}

void set_rate(benchmark::State& st, const char* name, double per_iteration) {
  st.counters[name] = benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

std::unique_ptr<Ops> cpu(int attn_block = 64) { return lct::make_cpu_ops(DType::F32, attn_block); }

// ---- GEMM ---------------------------------------------------------------------------------------

// y[N, M] = x[N, K] W[M, K]^T, the linear layers' forward.
void BM_linear_fwd(benchmark::State& st) {
  const int64_t N = st.range(0), K = st.range(1), M = st.range(2);
  auto ops = cpu();
  Buffer x(*ops, DType::F32, {N, K}), w(*ops, DType::F32, {M, K}), y(*ops, DType::F32, {N, M});
  fill(x, 1, 1.0);
  fill(w, 2, 0.02);
  for (auto _ : st) ops->matmul_forward(*y, *x, *w);
  set_rate(st, "GFLOP/s", 2e-9 * double(N) * K * M);
}

// dx = dy W; dW += dy^T x.
void BM_linear_bwd(benchmark::State& st) {
  const int64_t N = st.range(0), K = st.range(1), M = st.range(2);
  auto ops = cpu();
  Buffer x(*ops, DType::F32, {N, K}), w(*ops, DType::F32, {M, K}), dy(*ops, DType::F32, {N, M});
  Buffer dx(*ops, DType::F32, {N, K}), dw(*ops, DType::F32, {M, K});
  fill(x, 1, 1.0);
  fill(w, 2, 0.02);
  fill(dy, 3, 1e-3);
  for (auto _ : st) ops->matmul_backward(*dx, *dw, *dy, *x, *w);
  set_rate(st, "GFLOP/s", 4e-9 * double(N) * K * M);
}

// The machine's fp32 GEMM rate: square n x n x n, C = A B, with the cpu backend's GEMM and with
// Eigen's (the rate in docs/machine notes); the MFU denominator is the larger of the two.
void BM_sgemm_square(benchmark::State& st) {
  const int64_t n = st.range(0);
  auto ops = cpu();
  Buffer a(*ops, DType::F32, {n, n}), b(*ops, DType::F32, {n, n}), c(*ops, DType::F32, {n, n});
  fill(a, 1, 1.0);
  fill(b, 2, 1.0);
  for (auto _ : st) lct::cpu::gemm<float>(n, n, n, 1.0f, a.f(), n, 1, b.f(), n, 1, c.f(), n, false);
  set_rate(st, "GFLOP/s", 2e-9 * double(n) * n * n);
}

void BM_sgemm_eigen(benchmark::State& st) {
  const int64_t n = st.range(0);
  auto ops = cpu();
  Buffer a(*ops, DType::F32, {n, n}), b(*ops, DType::F32, {n, n}), c(*ops, DType::F32, {n, n});
  fill(a, 1, 1.0);
  fill(b, 2, 1.0);
  lct::cpu::MatMap<float> C(c.f(), n, n);
  lct::cpu::ConstMatMap<float> A(a.f(), n, n), B(b.f(), n, n);
  for (auto _ : st) C.noalias() = A * B;
  set_rate(st, "GFLOP/s", 2e-9 * double(n) * n * n);
}

// ---- attention ----------------------------------------------------------------------------------

struct AttnCase {
  int64_t B, T, Hq = 8, Hkv = 4, D = 64;
  double fwd_flops() const { return 2.0 * B * Hq * double(T) * T * D; }  // causal
};

struct AttnBuffers {
  AttnBuffers(Ops& ops, const AttnCase& c)
      : q(ops, DType::F32, {c.B, c.T, c.Hq, c.D}),
        k(ops, DType::F32, {c.B, c.T, c.Hkv, c.D}),
        v(ops, DType::F32, {c.B, c.T, c.Hkv, c.D}),
        out(ops, DType::F32, {c.B, c.T, c.Hq, c.D}),
        dout(ops, DType::F32, {c.B, c.T, c.Hq, c.D}),
        lse(ops, DType::F32, {c.B, c.Hq, c.T}),
        dq(ops, DType::F32, {c.B, c.T, c.Hq, c.D}),
        dk(ops, DType::F32, {c.B, c.T, c.Hkv, c.D}),
        dv(ops, DType::F32, {c.B, c.T, c.Hkv, c.D}),
        pos(ops, DType::I32, {c.T}) {
    fill(q, 1, 1.0);
    fill(k, 2, 1.0);
    fill(v, 3, 1.0);
    fill(dout, 4, 1.0);
    for (int64_t t = 0; t < c.T; ++t) pos.i()[t] = int32_t(t);
  }
  Buffer q, k, v, out, dout, lse, dq, dk, dv, pos;
};

AttnCase attn_case(const benchmark::State& st) { return AttnCase{st.range(0), st.range(1)}; }

void BM_attention_fwd(benchmark::State& st) {
  const AttnCase c = attn_case(st);
  auto ops = cpu(int(st.range(2)));
  AttnBuffers b(*ops, c);
  for (auto _ : st) ops->attention_forward(*b.out, *b.lse, *b.q, *b.k, *b.v, *b.pos, *b.pos);
  set_rate(st, "GFLOP/s", 1e-9 * c.fwd_flops());
}

void BM_attention_bwd(benchmark::State& st) {
  const AttnCase c = attn_case(st);
  auto ops = cpu(int(st.range(2)));
  AttnBuffers b(*ops, c);
  ops->attention_forward(*b.out, *b.lse, *b.q, *b.k, *b.v, *b.pos, *b.pos);
  for (auto _ : st) {
    ops->zero(*b.dq);  // the ring zeroes these before the first block too
    ops->zero(*b.dk);
    ops->zero(*b.dv);
    ops->attention_backward(*b.dq, *b.dk, *b.dv, *b.dout, *b.q, *b.k, *b.v, *b.pos, *b.pos, *b.out, *b.lse);
  }
  set_rate(st, "GFLOP/s", 2e-9 * c.fwd_flops());
}

void BM_attention_fwd_bwd(benchmark::State& st) {
  const AttnCase c = attn_case(st);
  auto ops = cpu(int(st.range(2)));
  AttnBuffers b(*ops, c);
  for (auto _ : st) {
    ops->attention_forward(*b.out, *b.lse, *b.q, *b.k, *b.v, *b.pos, *b.pos);
    ops->zero(*b.dq);
    ops->zero(*b.dk);
    ops->zero(*b.dv);
    ops->attention_backward(*b.dq, *b.dk, *b.dv, *b.dout, *b.q, *b.k, *b.v, *b.pos, *b.pos, *b.out, *b.lse);
  }
  set_rate(st, "GFLOP/s", 3e-9 * c.fwd_flops());
}

// ---- token-wise ops (bandwidth-bound: GB/s of the tensors read and written) --------------------

void BM_rmsnorm_fwd(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1);
  auto ops = cpu();
  Buffer x(*ops, DType::F32, {N, C}), y(*ops, DType::F32, {N, C}), w(*ops, DType::F32, {C}), r(*ops, DType::F32, {N});
  fill(x, 1, 1.0);
  fill(w, 2, 1.0);
  for (auto _ : st) ops->rmsnorm_forward(*y, *r, *x, *w, 1e-5);
  set_rate(st, "GB/s", 1e-9 * 2 * 4.0 * N * C);
}

void BM_rmsnorm_bwd(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1);
  auto ops = cpu();
  Buffer x(*ops, DType::F32, {N, C}), dy(*ops, DType::F32, {N, C}), dx(*ops, DType::F32, {N, C});
  Buffer w(*ops, DType::F32, {C}), dw(*ops, DType::F32, {C}), r(*ops, DType::F32, {N}), y(*ops, DType::F32, {N, C});
  fill(x, 1, 1.0);
  fill(w, 2, 1.0);
  fill(dy, 3, 1.0);
  ops->rmsnorm_forward(*y, *r, *x, *w, 1e-5);
  for (auto _ : st) ops->rmsnorm_backward(*dx, *dw, *dy, *x, *w, *r);
  set_rate(st, "GB/s", 1e-9 * 4 * 4.0 * N * C);  // read x, dy, dx; write dx
}

void BM_swiglu_fwd(benchmark::State& st) {
  const int64_t N = st.range(0), F = st.range(1);
  auto ops = cpu();
  Buffer g(*ops, DType::F32, {N, F}), u(*ops, DType::F32, {N, F}), h(*ops, DType::F32, {N, F});
  fill(g, 1, 1.0);
  fill(u, 2, 1.0);
  for (auto _ : st) ops->swiglu_forward(*h, *g, *u);
  set_rate(st, "GB/s", 1e-9 * 3 * 4.0 * N * F);
}

void BM_swiglu_bwd(benchmark::State& st) {
  const int64_t N = st.range(0), F = st.range(1);
  auto ops = cpu();
  Buffer g(*ops, DType::F32, {N, F}), u(*ops, DType::F32, {N, F}), dh(*ops, DType::F32, {N, F});
  Buffer dg(*ops, DType::F32, {N, F}), du(*ops, DType::F32, {N, F});
  fill(g, 1, 1.0);
  fill(u, 2, 1.0);
  fill(dh, 3, 1.0);
  for (auto _ : st) ops->swiglu_backward(*dg, *du, *dh, *g, *u);
  set_rate(st, "GB/s", 1e-9 * 5 * 4.0 * N * F);
}

// ---- LM head + loss (forward, combine, backward) -----------------------------------------------

void BM_lmhead_loss(benchmark::State& st) {
  const int64_t N = st.range(0), C = st.range(1), V = st.range(2);
  auto ops = cpu();
  Buffer x(*ops, DType::F32, {N, C}), w(*ops, DType::F32, {V, C}), dx(*ops, DType::F32, {N, C});
  Buffer dw(*ops, DType::F32, {V, C}), stats(*ops, DType::F32, {N, 3}), lse(*ops, DType::F32, {N});
  Buffer tg(*ops, DType::I32, {N});
  fill(x, 1, 1.0);
  fill(w, 2, 0.02);
  lct::Rng rng(3);
  for (int64_t n = 0; n < N; ++n) tg.i()[n] = int32_t(rng.below(uint64_t(V)));
  for (auto _ : st) {
    ops->lmhead_loss_forward(*stats, *x, *w, *tg, 0);
    benchmark::DoNotOptimize(ops->lmhead_loss_combine(*lse, *stats, *tg));
    ops->lmhead_loss_backward(*dx, *dw, *x, *w, *tg, *lse, 1.0 / double(N), 0);
  }
  set_rate(st, "GFLOP/s", 6e-9 * double(N) * C * V);
}

// ---- optimizer ----------------------------------------------------------------------------------

void BM_adamw(benchmark::State& st) {
  const int64_t n = st.range(0);
  auto ops = cpu();
  Buffer p(*ops, DType::F32, {n}), m(*ops, DType::F32, {n}), v(*ops, DType::F32, {n}), g(*ops, DType::F32, {n});
  fill(p, 1, 0.02);
  fill(g, 2, 1e-3);
  lct::AdamWArgs a;
  a.lr = 1e-4;
  a.weight_decay = 0.1;
  for (auto _ : st) ops->adamw_update(*p, *m, *v, *g, a);
  set_rate(st, "GB/s", 1e-9 * 7 * 4.0 * n);  // read p, m, v, g; write p, m, v
}

// Shapes: 4096 tokens (seq 1K x 4 or seq 8K x 1 gives the same token-wise shapes).
constexpr int64_t kN = 4096, kC = 512, kKV = 256, kF = 1408, kV = 32000;

void linear_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "K", "M"});
  b->Args({kN, kC, kC});    // wq, wo
  b->Args({kN, kC, kKV});   // wk, wv (GQA)
  b->Args({kN, kC, kF});    // gate, up
  b->Args({kN, kF, kC});    // down
  b->Args({kN, kC, kV});    // LM head logits
}

void attention_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "tile"});
  b->Args({4, 1024, 64});
  b->Args({4, 1024, 128});
  b->Args({1, 8192, 64});
  b->Args({1, 8192, 128});
}

}  // namespace

BENCHMARK(BM_sgemm_square)->Arg(1024)->Arg(2048)->ArgName("n")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sgemm_eigen)->Arg(1024)->Arg(2048)->ArgName("n")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_linear_fwd)->Apply(linear_shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_linear_bwd)->Apply(linear_shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_attention_fwd)->Apply(attention_shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_attention_bwd)->Apply(attention_shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_attention_fwd_bwd)->Apply(attention_shapes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_rmsnorm_fwd)->Args({kN, kC})->ArgNames({"N", "C"})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_rmsnorm_bwd)->Args({kN, kC})->ArgNames({"N", "C"})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_swiglu_fwd)->Args({kN, kF})->ArgNames({"N", "F"})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_swiglu_bwd)->Args({kN, kF})->ArgNames({"N", "F"})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_lmhead_loss)->Args({kN, kC, kV})->ArgNames({"N", "C", "V"})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_adamw)->Arg(56'000'000)->ArgName("n")->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_max_threads", std::to_string(omp_get_max_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
