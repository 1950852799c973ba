// Benchmarks of the cuda backend, for tests/gpu/bench.sh:
//   gemm   bf16 cuBLASLt GEMM rate on large square products (the MFU denominator we measure);
//   attn   attention forward + backward TFLOP/s, our kernels next to cuDNN's, causal, D = 128;
//   step   a ~1B-parameter Llama-like layer stack (16 layers, d_model 2048, 16 heads of 128, 8 KV
//          heads, SwiGLU 8192, vocabulary 128256): one full training step through the Ops
//          interface (forward, chunked LM head + loss, backward, AdamW, bf16 weight refresh);
//          tokens/s and MFU against 989 TFLOP/s and against the measured GEMM rate.
// Every section catches its own errors, so one failure (say cuDNN) still leaves the others.
// Output: one line per measurement, and with --json FILE the same as JSON.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "cuda/cuda_ops.h"
#include "ops/ops.h"

namespace lct {
namespace {

constexpr double kPeakBf16 = 989e12;  // H100/H200 SXM dense bf16

struct Results {
  std::vector<std::string> json;
  void add(const std::string& key, double v) {
    json.push_back(str("\"", key, "\": ", std::isfinite(v) ? str(v) : std::string("null")));
  }
  void note(const std::string& key, const std::string& v) { json.push_back(str("\"", key, "\": \"", v, "\"")); }
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Median seconds of `reps` runs of f after `warm` warm-up runs.
double time_it(Ops& ops, int warm, int reps, const std::function<void()>& f) {
  for (int i = 0; i < warm; ++i) f();
  ops.synchronize();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now();
    f();
    ops.synchronize();
    t.push_back(now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Owning device tensor.
struct Buf {
  Ops* ops = nullptr;
  Tensor t;
  Buf() = default;
  Buf(Ops& o, DType dt, std::initializer_list<int64_t> dims) : ops(&o), t(nullptr, dt, dims) { t.ptr = o.alloc(t.bytes()); }
  ~Buf() {
    if (ops) ops->free(t.ptr);
  }
  Buf(Buf&& b) noexcept : ops(b.ops), t(b.t) { b.ops = nullptr; }
  Buf& operator=(Buf&& b) noexcept {
    std::swap(ops, b.ops);
    std::swap(t, b.t);
    return *this;
  }
  operator Tensor() const { return t; }
};

// Fills a bf16 or f32 tensor with N(0, scale^2) values: one block of 4M values, drawn once and
// repeated (the numbers only need to be realistic, and drawing 1.5e9 normals on one core takes
// a minute).
void fill_random(Ops& ops, const Tensor& t, double scale, uint64_t seed) {
  Rng rng(seed);
  const int64_t n = t.numel(), block = std::min<int64_t>(n, int64_t(1) << 22);
  std::vector<uint16_t> hb;
  std::vector<float> hf;
  if (t.dtype == DType::BF16) {
    hb.resize(static_cast<size_t>(block));
    for (auto& x : hb) x = float_to_bf16(float(rng.normal() * scale));
  } else {
    hf.resize(static_cast<size_t>(block));
    for (auto& x : hf) x = float(rng.normal() * scale);
  }
  for (int64_t s = 0; s < n; s += block) {
    const int64_t m = std::min(block, n - s);
    Tensor part(static_cast<char*>(t.ptr) + size_t(s) * dtype_size(t.dtype), t.dtype, {m});
    ops.from_host(part, t.dtype == DType::BF16 ? static_cast<const void*>(hb.data()) : hf.data());
  }
}

void upload_positions(Ops& ops, const Tensor& t, int32_t first) {
  std::vector<int32_t> p(size_t(t.numel()));
  std::iota(p.begin(), p.end(), first);
  ops.from_host(t, p.data());
}

// ---- GEMM ----------------------------------------------------------------------------------------
double bench_gemm(Ops& ops, Results& res) {
  double best = 0;
  for (int64_t n : {4096, 8192}) {
    Buf x(ops, DType::BF16, {n, n}), w(ops, DType::BF16, {n, n}), y(ops, DType::BF16, {n, n});
    fill_random(ops, x, 1.0, 1);
    fill_random(ops, w, 0.02, 2);
    const double t = time_it(ops, 3, 10, [&] { ops.matmul_forward(y, x, w); });
    const double tf = 2.0 * double(n) * double(n) * double(n) / t / 1e12;
    std::printf("gemm   bf16 cuBLASLt %5ld^3                     %8.1f TFLOP/s  (%.3f ms)\n", long(n), tf, t * 1e3);
    res.add(str("gemm_tflops_", n), tf);
    best = std::max(best, tf);
  }
  return best * 1e12;
}

// The ~1B model's linear layers at 8192 tokens (x [N, K] W[M, K]^T: q/o, k/v, gate/up, down, LM
// head), forward GEMMs as the model issues them; the FLOP-weighted rate is the row to compare
// with torch.matmul on the same shapes (tools/bench_torch.py gemm --shapes model1b).
void bench_model_gemms(Ops& ops, Results& res) {
  struct S {
    const char* name;
    int64_t N, K, M;
  };
  const S shapes[] = {{"q_o", 8192, 2048, 2048}, {"k_v", 8192, 2048, 1024}, {"gate_up", 8192, 2048, 8192},
                      {"down", 8192, 8192, 2048}, {"lm_head", 8192, 2048, 128256}};
  double flops = 0, secs = 0;
  for (const S& s : shapes) {
    Buf x(ops, DType::BF16, {s.N, s.K}), w(ops, DType::BF16, {s.M, s.K}), y(ops, DType::BF16, {s.N, s.M});
    fill_random(ops, x, 1.0, 1);
    fill_random(ops, w, 0.02, 2);
    const double t = time_it(ops, 3, 10, [&] { ops.matmul_forward(y, x, w); });
    const double f = 2.0 * double(s.N) * double(s.K) * double(s.M);
    std::printf("gemm   bf16 cuBLASLt model1b %-8s %5ldx%5ldx%6ld %8.1f TFLOP/s\n", s.name, long(s.N), long(s.K),
                long(s.M), f / t / 1e12);
    res.add(str("gemm_model1b_", s.name, "_tflops"), f / t / 1e12);
    flops += f;
    secs += t;
  }
  std::printf("gemm   bf16 cuBLASLt model1b FLOP-weighted                %8.1f TFLOP/s\n", flops / secs / 1e12);
  res.add("gemm_model1b_tflops", flops / secs / 1e12);
}

// ---- attention -----------------------------------------------------------------------------------
void bench_attention(int64_t T, const std::string& impl_name, Results& res) {
  const int64_t B = 1, Hq = 32, Hkv = 8, D = 128;
  std::unique_ptr<Ops> ops = make_cuda_ops(0, parse_attention_impl(impl_name));
  Buf q(*ops, DType::BF16, {B, T, Hq, D}), k(*ops, DType::BF16, {B, T, Hkv, D}), v(*ops, DType::BF16, {B, T, Hkv, D}),
      dout(*ops, DType::BF16, {B, T, Hq, D}), pos(*ops, DType::I32, {T}), out(*ops, DType::F32, {B, T, Hq, D}),
      lse(*ops, DType::F32, {B, Hq, T}), dq(*ops, DType::F32, {B, T, Hq, D}), dk(*ops, DType::F32, {B, T, Hkv, D}),
      dv(*ops, DType::F32, {B, T, Hkv, D});
  fill_random(*ops, q, 1.0, 3);
  fill_random(*ops, k, 1.0, 4);
  fill_random(*ops, v, 1.0, 5);
  fill_random(*ops, dout, 1.0, 6);
  upload_positions(*ops, pos, 0);
  const double pairs = double(T) * double(T + 1) / 2.0;
  const double fwd_flops = 4.0 * double(B * Hq * D) * pairs, bwd_flops = 2.5 * fwd_flops;
  const int reps = T > 16384 ? 3 : 5;
  const double tf = time_it(*ops, 1, reps, [&] { ops->attention_forward(out, lse, q, k, v, pos, pos); });
  const double tb =
      time_it(*ops, 1, reps, [&] { ops->attention_backward(dq, dk, dv, dout, q, k, v, pos, pos, out, lse); });
  const double total = (fwd_flops + bwd_flops) / (tf + tb) / 1e12;
  std::printf("attn   %-5s T=%-6ld Hq=32 Hkv=8 D=128 causal  fwd %6.1f  bwd %6.1f  fwd+bwd %6.1f TFLOP/s\n",
              impl_name.c_str(), long(T), fwd_flops / tf / 1e12, bwd_flops / tb / 1e12, total);
  res.add(str("attn_", impl_name, "_", T, "_fwd_tflops"), fwd_flops / tf / 1e12);
  res.add(str("attn_", impl_name, "_", T, "_bwd_tflops"), bwd_flops / tb / 1e12);
  res.add(str("attn_", impl_name, "_", T, "_fwdbwd_tflops"), total);
}

// ---- ~1B Llama-like training step ---------------------------------------------------------------
struct ModelShape {
  int64_t C = 2048, L = 16, Hq = 16, Hkv = 8, D = 128, F = 8192, V = 128256;
  int64_t layer_params() const { return C * (Hq * D) + 2 * C * (Hkv * D) + (Hq * D) * C + 3 * C * F + 2 * C; }
  int64_t params() const { return L * layer_params() + 2 * V * C + C; }
  int64_t matmul_params() const { return L * (layer_params() - 2 * C) + V * C; }  // the LM head multiplies too
};

// All weights live in one flat buffer (f32 master, f32 grads, Adam moments, bf16 copy), so the
// optimizer is one multi-tensor AdamW over the flat vectors and one f32 -> bf16 conversion.
struct Weights {
  Buf master, grad, m, v, bf;
  int64_t used = 0;
  std::vector<std::pair<Tensor, Tensor>> views;  // (bf16 weight, f32 grad)
  Weights(Ops& ops, int64_t n)
      : master(ops, DType::F32, {n}), grad(ops, DType::F32, {n}), m(ops, DType::F32, {n}), v(ops, DType::F32, {n}),
        bf(ops, DType::BF16, {n}) {}
  std::pair<Tensor, Tensor> take(std::initializer_list<int64_t> dims) {
    Tensor w(static_cast<uint16_t*>(bf.t.ptr) + used, DType::BF16, dims);
    Tensor g(static_cast<float*>(grad.t.ptr) + used, DType::F32, dims);
    used += w.numel();
    used = (used + 127) / 128 * 128;  // 256-byte aligned views for the GEMMs
    return {w, g};
  }
};

struct Layer {
  std::pair<Tensor, Tensor> ln1, wq, wk, wv, wo, ln2, wg, wu, wd;
  Buf x, xn, rstd1, q, k, v, out, lse, attn, xmid, xn2, rstd2, gate, up, h;
};

void bench_step(int64_t T, const std::string& impl_name, double gemm_rate, int steps, Results& res) {
  const ModelShape s;
  std::unique_ptr<Ops> ops = make_cuda_ops(0, parse_attention_impl(impl_name));
  Ops& o = *ops;
  const int64_t nw = s.params() + 256 * (9 * s.L + 8);
  Weights W(o, nw);
  fill_random(o, W.master, 0.02, 7);
  auto emb = W.take({s.V, s.C}), lm = W.take({s.V, s.C}), lnf = W.take({s.C});
  std::vector<Layer> layers(size_t(s.L));
  const int64_t HQ = s.Hq * s.D, HK = s.Hkv * s.D;
  for (auto& l : layers) {
    l.ln1 = W.take({s.C});
    l.wq = W.take({HQ, s.C});
    l.wk = W.take({HK, s.C});
    l.wv = W.take({HK, s.C});
    l.wo = W.take({s.C, HQ});
    l.ln2 = W.take({s.C});
    l.wg = W.take({s.F, s.C});
    l.wu = W.take({s.F, s.C});
    l.wd = W.take({s.C, s.F});
    l.x = Buf(o, DType::BF16, {T, s.C});
    l.xn = Buf(o, DType::BF16, {T, s.C});
    l.rstd1 = Buf(o, DType::F32, {T});
    l.q = Buf(o, DType::BF16, {1, T, s.Hq, s.D});
    l.k = Buf(o, DType::BF16, {1, T, s.Hkv, s.D});
    l.v = Buf(o, DType::BF16, {1, T, s.Hkv, s.D});
    l.out = Buf(o, DType::F32, {1, T, s.Hq, s.D});
    l.lse = Buf(o, DType::F32, {1, s.Hq, T});
    l.attn = Buf(o, DType::BF16, {T, HQ});
    l.xmid = Buf(o, DType::BF16, {T, s.C});
    l.xn2 = Buf(o, DType::BF16, {T, s.C});
    l.rstd2 = Buf(o, DType::F32, {T});
    l.gate = Buf(o, DType::BF16, {T, s.F});
    l.up = Buf(o, DType::BF16, {T, s.F});
    l.h = Buf(o, DType::BF16, {T, s.F});
  }
  o.convert(W.bf, W.master);

  Buf tokens(o, DType::I32, {T}), targets(o, DType::I32, {T}), pos(o, DType::I32, {T});
  {
    Rng rng(11);
    std::vector<int32_t> t(static_cast<size_t>(T));
    for (auto& x : t) x = int32_t(rng.below(uint64_t(s.V)));
    o.from_host(tokens, t.data());
    for (auto& x : t) x = int32_t(rng.below(uint64_t(s.V)));
    o.from_host(targets, t.data());
  }
  upload_positions(o, pos, 0);
  Buf cosb(o, DType::F32, {T, s.D / 2}), sinb(o, DType::F32, {T, s.D / 2});
  fill_random(o, cosb, 0.5, 12);
  fill_random(o, sinb, 0.5, 13);
  Buf xf(o, DType::BF16, {T, s.C}), xfn(o, DType::BF16, {T, s.C}), rstdf(o, DType::F32, {T});
  Buf stats(o, DType::F32, {1, T, 3}), lsel(o, DType::F32, {T});
  // Backward scratch.
  Buf dx(o, DType::BF16, {T, s.C}), dxn(o, DType::BF16, {T, s.C}), dh(o, DType::BF16, {T, s.F}),
      dgate(o, DType::BF16, {T, s.F}), dup(o, DType::BF16, {T, s.F}), dattn(o, DType::BF16, {1, T, s.Hq, s.D}),
      dq(o, DType::F32, {1, T, s.Hq, s.D}), dk(o, DType::F32, {1, T, s.Hkv, s.D}), dv(o, DType::F32, {1, T, s.Hkv, s.D}),
      dqb(o, DType::BF16, {1, T, s.Hq, s.D}), dkb(o, DType::BF16, {1, T, s.Hkv, s.D}),
      dvb(o, DType::BF16, {1, T, s.Hkv, s.D});
  auto flat = [](const Tensor& t, int64_t r, int64_t c) { return t.view({r, c}); };
  int64_t step_no = 0;
  double loss = 0;

  auto step = [&] {
    o.zero(W.grad);
    // forward
    o.embedding_forward(layers[0].x, tokens, emb.first, 0);
    for (size_t li = 0; li < layers.size(); ++li) {
      Layer& l = layers[li];
      o.rmsnorm_forward(l.xn, l.rstd1, l.x, l.ln1.first, 1e-5);
      o.matmul_forward(flat(l.q, T, HQ), l.xn, l.wq.first);
      o.matmul_forward(flat(l.k, T, HK), l.xn, l.wk.first);
      o.matmul_forward(flat(l.v, T, HK), l.xn, l.wv.first);
      o.rope_forward(l.q, cosb, sinb);
      o.rope_forward(l.k, cosb, sinb);
      o.attention_forward(l.out, l.lse, l.q, l.k, l.v, pos, pos);
      o.convert(l.attn, l.out);
      o.matmul_forward(l.xmid, l.attn, l.wo.first);
      o.add_forward(l.xmid, l.xmid, l.x);
      o.rmsnorm_forward(l.xn2, l.rstd2, l.xmid, l.ln2.first, 1e-5);
      o.matmul_forward(l.gate, l.xn2, l.wg.first);
      o.matmul_forward(l.up, l.xn2, l.wu.first);
      o.swiglu_forward(l.h, l.gate, l.up);
      Tensor next = li + 1 < layers.size() ? Tensor(layers[li + 1].x) : Tensor(xf);
      o.matmul_forward(next, l.h, l.wd.first);
      o.add_forward(next, next, l.xmid);
    }
    o.rmsnorm_forward(xfn, rstdf, xf, lnf.first, 1e-5);
    o.lmhead_loss_forward(stats.t.view({T, 3}), xfn, lm.first, targets, 0);
    loss = o.lmhead_loss_combine(lsel, stats, targets) / double(T);
    // backward
    o.lmhead_loss_backward(dxn, lm.second, xfn, lm.first, targets, lsel, 1.0 / double(T), 0);
    o.zero(dx);
    o.rmsnorm_backward(dx, lnf.second, dxn, xf, lnf.first, rstdf);
    for (size_t li = layers.size(); li-- > 0;) {
      Layer& l = layers[li];
      // x_next = xmid + h Wd^T: dxmid = dx (kept in dx), dh = dx Wd
      o.matmul_backward(dh, l.wd.second, dx, l.h, l.wd.first);
      o.swiglu_backward(dgate, dup, dh, l.gate, l.up);
      o.matmul_backward(dxn, l.wg.second, dgate, l.xn2, l.wg.first);
      o.matmul_backward(dxn, l.wu.second, dup, l.xn2, l.wu.first, true);
      o.rmsnorm_backward(dx, l.ln2.second, dxn, l.xmid, l.ln2.first, l.rstd2);
      // xmid = x + attn Wo^T: dx stays the residual gradient
      o.matmul_backward(flat(dattn, T, HQ), l.wo.second, dx, l.attn, l.wo.first);
      o.zero(dq);
      o.zero(dk);
      o.zero(dv);
      o.attention_backward(dq, dk, dv, dattn, l.q, l.k, l.v, pos, pos, l.out, l.lse);
      o.convert(dqb, dq);
      o.convert(dkb, dk);
      o.convert(dvb, dv);
      o.rope_backward(dqb, cosb, sinb);
      o.rope_backward(dkb, cosb, sinb);
      o.matmul_backward(dxn, l.wq.second, flat(dqb, T, HQ), l.xn, l.wq.first);
      o.matmul_backward(dxn, l.wk.second, flat(dkb, T, HK), l.xn, l.wk.first, true);
      o.matmul_backward(dxn, l.wv.second, flat(dvb, T, HK), l.xn, l.wv.first, true);
      o.rmsnorm_backward(dx, l.ln1.second, dxn, l.x, l.ln1.first, l.rstd1);
    }
    o.embedding_backward(emb.second, dx, tokens, 0);
    // optimizer: global norm, AdamW over the flat vectors, bf16 refresh
    const double norm = std::sqrt(o.sum_squares(W.grad));
    AdamWArgs a;
    a.lr = 1e-5;
    a.weight_decay = 0.1;
    a.step = ++step_no;
    a.grad_scale = norm > 1.0 ? 1.0 / norm : 1.0;
    o.adamw_update(W.master, W.m, W.v, W.grad, a);
    o.convert(W.bf, W.master);
  };

  const double t = time_it(o, 1, steps, step);
  const double tokens_s = double(T) / t;
  const double flops_tok = 6.0 * double(s.matmul_params()) + 6.0 * double(s.L) * double(T) * double(s.Hq * s.D);
  const double model_flops = tokens_s * flops_tok;
  std::printf(
      "step   %-5s T=%-6ld %.2fB params  %.3f s/step  %8.0f tok/s  %6.1f TFLOP/s  MFU %4.1f%% of 989, %4.1f%% of "
      "measured GEMM  (loss %.3f, mem %.1f GiB + %.1f GiB workspace)\n",
      impl_name.c_str(), long(T), double(s.params()) / 1e9, t, tokens_s, model_flops / 1e12,
      100.0 * model_flops / kPeakBf16, gemm_rate > 0 ? 100.0 * model_flops / gemm_rate : NAN, loss,
      double(o.peak_allocated_bytes()) / double(1 << 30), double(cuda_workspace_bytes(o)) / double(1 << 30));
  const std::string key = str("step_", impl_name, "_", T);
  res.add(key + "_seconds", t);
  res.add(key + "_tokens_per_s", tokens_s);
  res.add(key + "_model_tflops", model_flops / 1e12);
  res.add(key + "_mfu_989", model_flops / kPeakBf16);
  res.add(key + "_mfu_gemm", gemm_rate > 0 ? model_flops / gemm_rate : NAN);
}

int run(int argc, char** argv) {
  std::string json_path, only;
  bool quick = false;
  std::vector<int64_t> attn_lens;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--quick") quick = true;
    else if (a == "--attn-lengths" && i + 1 < argc) {
      std::string s = argv[++i];
      for (size_t p = 0; p < s.size();) {
        const size_t c = s.find(',', p);
        attn_lens.push_back(std::stoll(s.substr(p, c - p)));
        p = c == std::string::npos ? s.size() : c + 1;
      }
    }
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_cuda [--quick] [--only gemm|attn|step] [--attn-lengths 8192,32768] [--json FILE]\n");
      return 2;
    }
  }
  std::string why;
  if (!cuda_available(&why)) {
    std::printf("bench_cuda: no usable GPU: %s\n", why.c_str());
    return 77;
  }
  Results res;
  double gemm_rate = 0;
  auto section = [&](const std::string& name, const std::function<void()>& f) {
    // --only takes a comma-separated list of section-name prefixes.
    if (!only.empty()) {
      bool hit = false;
      for (size_t p = 0; p <= only.size();) {
        const size_t c = std::min(only.find(',', p), only.size());
        const std::string pre = only.substr(p, c - p);
        hit = hit || (!pre.empty() && name.compare(0, pre.size(), pre) == 0);
        p = c + 1;
      }
      if (!hit) return;
    }
    try {
      f();
    } catch (const std::exception& e) {
      std::printf("%-6s FAILED: %s\n", name.c_str(), e.what());
      res.note(name + "_error", e.what());
    }
  };
  section("gemm", [&] {
    std::unique_ptr<Ops> ops = make_cuda_ops(0);
    gemm_rate = bench_gemm(*ops, res);
    bench_model_gemms(*ops, res);
  });
  const std::vector<int64_t> lens = quick ? std::vector<int64_t>{8192} : std::vector<int64_t>{8192, 32768};
  for (int64_t T : attn_lens.empty() ? lens : attn_lens)
    for (const char* impl : {"own", "cudnn"}) section(str("attn_", impl, "_", T), [&] { bench_attention(T, impl, res); });
  for (int64_t T : lens)
    for (const char* impl : {"own", "cudnn"})
      section(str("step_", impl, "_", T), [&] { bench_step(T, impl, gemm_rate, T > 16384 ? 1 : 2, res); });
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << "{\n";
    for (size_t i = 0; i < res.json.size(); ++i) f << "  " << res.json[i] << (i + 1 < res.json.size() ? ",\n" : "\n");
    f << "}\n";
  }
  return 0;
}

}  // namespace
}  // namespace lct

int main(int argc, char** argv) {
  try {
    return lct::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
}
