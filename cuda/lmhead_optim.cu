// Row reductions of the chunked LM head + cross-entropy, the optimizer updates and the flat
// vector reductions (sum of squares for the global gradient norm, scale, axpy).
#include "cuda/device_api.cuh"

#include <algorithm>
#include <cmath>

#include "cuda/device_util.cuh"
#include "cuda/kernels.h"

namespace lct::cuda {
namespace {

constexpr int kThreads = 256;

// ---- LM head rows ----------------------------------------------------------------------------
// Running (max, sum of exp(x - max)) pairs, merged without ever subtracting -inf from -inf.
struct MaxSum {
  float m, s;
};
__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.0f};
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

// Rows of the tile are ld apart; columns >= V are vocabulary padding and ignored.
__global__ void row_stats_kernel(float* stats, const float* logits, const int32_t* targets, int64_t ld, int64_t V,
                                 int64_t vocab_begin) {
  __shared__ MaxSum red[32];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * ld;
  MaxSum acc{-INFINITY, 0.0f};
  for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
    const float l = row[c];
    if (l > acc.m) {
      acc.s = acc.s * expf(acc.m - l) + 1.0f;
      acc.m = l;
    } else {
      acc.s += expf(l - acc.m);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum other{__shfl_xor_sync(0xffffffffu, acc.m, o), __shfl_xor_sync(0xffffffffu, acc.s, o)};
    acc = merge(acc, other);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) red[warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    MaxSum t = red[0];
    for (int w = 1; w < int(blockDim.x >> 5); ++w) t = merge(t, red[w]);
    const int32_t tg = targets[r];
    const int64_t ti = int64_t(tg) - vocab_begin;
    float* st = stats + r * 3;
    st[0] = t.m;
    st[1] = t.s;
    st[2] = (tg >= 0 && ti >= 0 && ti < V) ? row[ti] : 0.0f;
  }
}

// Padding columns (V <= c < ld) get a zero gradient, so padded weight rows stay zero.
__global__ void dlogits_kernel(bf16* dlogits, const float* logits, const int32_t* targets, const float* lse,
                               float scale, int64_t ld, int64_t V, int64_t vocab_begin) {
  const int64_t r = blockIdx.x;
  const float* row = logits + r * ld;
  bf16* out = dlogits + r * ld;
  const int32_t tg = targets[r];
  const float L = tg < 0 ? 0.0f : lse[r];
  const int64_t ti = int64_t(tg) - vocab_begin;
  for (int64_t c = threadIdx.x; c < ld; c += blockDim.x) {
    float d = 0.0f;
    if (tg >= 0 && c < V) {
      d = expf(row[c] - L) * scale;
      if (c == ti) d -= scale;
    }
    out[c] = f2bf(d);
  }
}

__global__ void combine_kernel(float* lse, double* partials, const float* stats_all, const int32_t* targets,
                               int64_t P, int64_t N) {
  __shared__ double red[32];
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  double loss = 0;
  if (n < N) {
    float mx = -INFINITY;
    for (int64_t p = 0; p < P; ++p) mx = fmaxf(mx, stats_all[(p * N + n) * 3]);
    float se = 0, tl = 0;
    for (int64_t p = 0; p < P; ++p) {
      const float* st = stats_all + (p * N + n) * 3;
      se += st[1] * expf(st[0] - mx);
      tl += st[2];
    }
    const float L = mx + logf(se);
    lse[n] = L;
    if (targets[n] >= 0) loss = double(L) - double(tl);
  }
  loss = block_sum(loss, red);
  if (threadIdx.x == 0) partials[blockIdx.x] = loss;
}

// ---- optimizer -------------------------------------------------------------------------------
__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, int64_t n, AdamWScalars a) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float gi = g[i] * a.grad_scale;
    const float mi = a.beta1 * m[i] + a.one_minus_beta1 * gi;
    const float vi = a.beta2 * v[i] + a.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float upd = (mi / a.bias_corr1) / (sqrtf(vi / a.bias_corr2) + a.eps);
    const float pi = p[i];
    p[i] = pi - a.lr * (upd + a.weight_decay * pi);
  }
}

__global__ void sgd_kernel(float* p, const float* g, int64_t n, float lr, float wd, float grad_scale) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float pi = p[i];
    p[i] = pi - lr * (g[i] * grad_scale + wd * pi);
  }
}

// ---- flat reductions -------------------------------------------------------------------------
template <class T> __device__ __forceinline__ float to_f(T x) { return float(x); }
template <> __device__ __forceinline__ float to_f<bf16>(bf16 x) { return bf2f(x); }

template <class T>
__global__ void sum_squares_kernel(double* partials, const T* x, int64_t n) {
  __shared__ double red[32];
  double acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double d = to_f(x[i]);
    acc += d * d;
  }
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void scale_f32_kernel(float* x, int64_t n, double a) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = float(double(x[i]) * a);
}
__global__ void scale_bf16_kernel(bf16* x, int64_t n, float a) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = f2bf(bf2f(x[i]) * a);
}
template <class TX>
__global__ void axpy_f32_kernel(float* y, double a, const TX* x, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = float(double(y[i]) + a * double(to_f(x[i])));
}
template <class TX>
__global__ void axpy_bf16_kernel(bf16* y, float a, const TX* x, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = f2bf(bf2f(y[i]) + a * to_f(x[i]));
}

}  // namespace

void lmhead_row_stats(float* stats, const float* logits, const int32_t* targets, int64_t rows, int64_t ld, int64_t V,
                      int64_t vocab_begin, cudaStream_t s) {
  if (rows <= 0) return;
  LCT_LAUNCH(row_stats_kernel, unsigned(rows), 512, 0, s, stats, logits, targets, ld, V, vocab_begin);
}

void lmhead_dlogits(bf16* dlogits, const float* logits, const int32_t* targets, const float* lse, float scale,
                    int64_t rows, int64_t ld, int64_t V, int64_t vocab_begin, cudaStream_t s) {
  if (rows <= 0) return;
  LCT_LAUNCH(dlogits_kernel, unsigned(rows), 512, 0, s, dlogits, logits, targets, lse, scale, ld, V, vocab_begin);
}

int64_t lmhead_combine_max_partials(int64_t N) { return std::max<int64_t>(1, (N + kThreads - 1) / kThreads); }

int lmhead_combine(float* lse, double* partials, const float* stats_all, const int32_t* targets, int64_t P,
                   int64_t N, cudaStream_t s) {
  if (N <= 0) return 0;
  const int blocks = int(lmhead_combine_max_partials(N));
  LCT_LAUNCH(combine_kernel, unsigned(blocks), kThreads, 0, s, lse, partials, stats_all, targets, P, N);
  return blocks;
}

void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamWScalars& a, cudaStream_t s) {
  if (n <= 0) return;
  LCT_LAUNCH(adamw_kernel, grid_for(n, kThreads, 16384), kThreads, 0, s, p, m, v, g, n, a);
}

void sgd_update(float* p, const float* g, int64_t n, float lr, float weight_decay, float grad_scale,
                cudaStream_t s) {
  if (n <= 0) return;
  LCT_LAUNCH(sgd_kernel, grid_for(n, kThreads, 16384), kThreads, 0, s, p, g, n, lr, weight_decay, grad_scale);
}

int sum_squares(double* partials, const void* x, DType t, int64_t n, cudaStream_t s) {
  if (n <= 0) return 0;
  // The grid depends on n only: the same input gives the same partials on any GPU.
  const int blocks = int(std::min<int64_t>(sum_squares_max_partials(), (n + 4 * kThreads - 1) / (4 * kThreads)));
  if (t == DType::F32)
    LCT_LAUNCH(sum_squares_kernel<float>, unsigned(blocks), kThreads, 0, s, partials, static_cast<const float*>(x),
               n);
  else
    LCT_LAUNCH(sum_squares_kernel<bf16>, unsigned(blocks), kThreads, 0, s, partials, static_cast<const bf16*>(x), n);
  return blocks;
}

void scale(void* x, DType t, int64_t n, double a, cudaStream_t s) {
  if (n <= 0) return;
  if (t == DType::F32)
    LCT_LAUNCH(scale_f32_kernel, grid_for(n, kThreads, 16384), kThreads, 0, s, static_cast<float*>(x), n, a);
  else
    LCT_LAUNCH(scale_bf16_kernel, grid_for(n, kThreads, 16384), kThreads, 0, s, static_cast<bf16*>(x), n, float(a));
}

void axpy(void* y, DType ty, double a, const void* x, DType tx, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  const unsigned grid = grid_for(n, kThreads, 16384);
  if (ty == DType::F32 && tx == DType::F32)
    LCT_LAUNCH(axpy_f32_kernel<float>, grid, kThreads, 0, s, static_cast<float*>(y), a, static_cast<const float*>(x),
               n);
  else if (ty == DType::F32)
    LCT_LAUNCH(axpy_f32_kernel<bf16>, grid, kThreads, 0, s, static_cast<float*>(y), a, static_cast<const bf16*>(x), n);
  else if (tx == DType::F32)
    LCT_LAUNCH(axpy_bf16_kernel<float>, grid, kThreads, 0, s, static_cast<bf16*>(y), float(a),
               static_cast<const float*>(x), n);
  else
    LCT_LAUNCH(axpy_bf16_kernel<bf16>, grid, kThreads, 0, s, static_cast<bf16*>(y), float(a),
               static_cast<const bf16*>(x), n);
}

}  // namespace lct::cuda
