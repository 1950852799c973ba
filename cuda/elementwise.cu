// Memory-bound kernels: dtype conversion, embedding, RMSNorm, RoPE, SwiGLU, residual add.
// bf16 in memory, fp32 arithmetic, results rounded once (round to nearest even). Rows that are
// 16-byte aligned with a multiple of 8 elements move as 16-byte vectors.
#include "cuda/device_api.cuh"

#include <algorithm>

#include "cuda/device_util.cuh"
#include "cuda/kernels.h"

namespace lct::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ void load8(const bf16* p, float f[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const bf16* h = reinterpret_cast<const bf16*>(&u);
#pragma unroll
  for (int i = 0; i < 8; ++i) f[i] = bf2f(h[i]);
}
__device__ __forceinline__ void store8(bf16* p, const float f[8]) {
  uint4 u;
  bf16* h = reinterpret_cast<bf16*>(&u);
#pragma unroll
  for (int i = 0; i < 8; ++i) h[i] = f2bf(f[i]);
  *reinterpret_cast<uint4*>(p) = u;
}

// ---- generic elementwise map over bf16 vectors ----------------------------------------------
// NI inputs, NO outputs (an output may alias an input: every element is loaded before it is
// stored). Op: void operator()(const float* in, float* out) per element.
template <int NI, int NO> struct MapPtrs {
  const bf16* in[NI];
  bf16* out[NO];
};

template <int NI, int NO, class Op>
__global__ void map_kernel(MapPtrs<NI, NO> p, int64_t n, int64_t nvec, Op op) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride) {
    float in[NI][8], out[NO][8];
#pragma unroll
    for (int a = 0; a < NI; ++a) load8(p.in[a] + i * 8, in[a]);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float vi[NI], vo[NO];
#pragma unroll
      for (int a = 0; a < NI; ++a) vi[a] = in[a][e];
      op(vi, vo);
#pragma unroll
      for (int a = 0; a < NO; ++a) out[a][e] = vo[a];
    }
#pragma unroll
    for (int a = 0; a < NO; ++a) store8(p.out[a] + i * 8, out[a]);
  }
  for (int64_t i = nvec * 8 + int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    float vi[NI], vo[NO];
#pragma unroll
    for (int a = 0; a < NI; ++a) vi[a] = bf2f(p.in[a][i]);
    op(vi, vo);
#pragma unroll
    for (int a = 0; a < NO; ++a) p.out[a][i] = f2bf(vo[a]);
  }
}

template <int NI, int NO, class Op>
void launch_map(const MapPtrs<NI, NO>& p, int64_t n, Op op, cudaStream_t s) {
  if (n <= 0) return;
  bool vec = true;
  for (int a = 0; a < NI; ++a) vec = vec && aligned16(p.in[a]);
  for (int a = 0; a < NO; ++a) vec = vec && aligned16(p.out[a]);
  const int64_t nvec = vec ? n / 8 : 0;
  LCT_LAUNCH((map_kernel<NI, NO, Op>), grid_for(vec ? nvec : n, kThreads, 4096), kThreads, 0, s, p, n, nvec, op);
}

struct SwigluFwd {
  __device__ void operator()(const float* in, float* out) const {
    const float g = in[0], sig = 1.0f / (1.0f + expf(-g));
    out[0] = g * sig * in[1];
  }
};
struct SwigluBwd {  // in: dh, gate, up; out: dgate, dup
  __device__ void operator()(const float* in, float* out) const {
    const float dh = in[0], g = in[1], u = in[2];
    const float sig = 1.0f / (1.0f + expf(-g)), silu = g * sig;
    out[1] = dh * silu;
    out[0] = dh * u * sig * (1.0f + g * (1.0f - sig));
  }
};
struct AddFwd {
  __device__ void operator()(const float* in, float* out) const { out[0] = in[0] + in[1]; }
};
struct AddBwd {  // in: dy, da, db; out: da, db
  __device__ void operator()(const float* in, float* out) const {
    out[0] = in[1] + in[0];
    out[1] = in[2] + in[0];
  }
};

// ---- conversion ------------------------------------------------------------------------------
__global__ void f32_to_bf16_kernel(bf16* dst, const float* src, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = f2bf(src[i]);
}
__global__ void bf16_to_f32_kernel(float* dst, const bf16* src, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = bf2f(src[i]);
}
__device__ double load_any(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F64: return static_cast<const double*>(p)[i];
    case DType::BF16: return bf2f(static_cast<const bf16*>(p)[i]);
    case DType::I32: return static_cast<const int32_t*>(p)[i];
  }
  return 0;
}
__global__ void convert_any_kernel(void* dst, DType dt, const void* src, DType st, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double x = load_any(src, st, i);
    switch (dt) {
      case DType::F32: static_cast<float*>(dst)[i] = float(x); break;
      case DType::F64: static_cast<double*>(dst)[i] = x; break;
      case DType::BF16: static_cast<bf16*>(dst)[i] = f2bf(float(x)); break;
      case DType::I32: static_cast<int32_t*>(dst)[i] = int32_t(x); break;
    }
  }
}

// ---- embedding -------------------------------------------------------------------------------
template <bool VEC>
__global__ void embedding_fwd_kernel(bf16* out, const int32_t* tokens, const bf16* wte, int64_t C,
                                     int64_t vocab_begin, int64_t V) {
  const int64_t n = blockIdx.x;
  const int64_t id = int64_t(tokens[n]) - vocab_begin;
  const bool in = id >= 0 && id < V;
  bf16* o = out + n * C;
  const bf16* w = wte + (in ? id : 0) * C;
  if (VEC) {
    for (int64_t c = threadIdx.x * 8; c < C; c += blockDim.x * 8)
      *reinterpret_cast<uint4*>(o + c) = in ? *reinterpret_cast<const uint4*>(w + c) : make_uint4(0, 0, 0, 0);
  } else {
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) o[c] = in ? w[c] : __ushort_as_bfloat16(0);
  }
}
__global__ void embedding_bwd_kernel(float* dwte, const bf16* dout, const int32_t* tokens, int64_t C,
                                     int64_t vocab_begin, int64_t V) {
  const int64_t n = blockIdx.x;
  const int64_t id = int64_t(tokens[n]) - vocab_begin;
  if (id < 0 || id >= V) return;
  float* row = dwte + id * C;
  const bf16* g = dout + n * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(row + c, bf2f(g[c]));
}

// ---- RMSNorm ---------------------------------------------------------------------------------
template <bool VEC>
__global__ void rmsnorm_fwd_kernel(bf16* y, float* rstd, const bf16* x, const bf16* w, int C, float eps) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x;
  const bf16* xr = x + row * C;
  bf16* yr = y + row * C;
  float ss = 0;
  if (VEC) {
    for (int c = threadIdx.x * 8; c < C; c += blockDim.x * 8) {
      float f[8];
      load8(xr + c, f);
#pragma unroll
      for (int i = 0; i < 8; ++i) ss += f[i] * f[i];
    }
  } else {
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      const float f = bf2f(xr[c]);
      ss += f * f;
    }
  }
  ss = block_sum(ss, red);
  const float r = 1.0f / sqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  if (VEC) {
    for (int c = threadIdx.x * 8; c < C; c += blockDim.x * 8) {
      float f[8], g[8];
      load8(xr + c, f);
      load8(w + c, g);
#pragma unroll
      for (int i = 0; i < 8; ++i) f[i] = g[i] * (f[i] * r);
      store8(yr + c, f);
    }
  } else {
    for (int c = threadIdx.x; c < C; c += blockDim.x) yr[c] = f2bf(bf2f(w[c]) * (bf2f(xr[c]) * r));
  }
}

// Each block walks rows blockIdx.x, += gridDim.x; its dw partial sums live in shared memory
// (one float per column) and are added to dw atomically at the end.
template <bool VEC>
__global__ void rmsnorm_bwd_kernel(bf16* dx, float* dw, const bf16* dy, const bf16* x, const bf16* w,
                                   const float* rstd, int64_t N, int C) {
  LCT_DYNAMIC_SMEM(float, dw_s);
  __shared__ float red[32];
  for (int c = threadIdx.x; c < C; c += blockDim.x) dw_s[c] = 0;
  __syncthreads();
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const bf16* xr = x + row * C;
    const bf16* dyr = dy + row * C;
    bf16* dxr = dx + row * C;
    const float r = rstd[row];
    float dot = 0;
    if (VEC) {
      for (int c = threadIdx.x * 8; c < C; c += blockDim.x * 8) {
        float xf[8], gf[8], wf[8];
        load8(xr + c, xf);
        load8(dyr + c, gf);
        load8(w + c, wf);
#pragma unroll
        for (int i = 0; i < 8; ++i) dot += wf[i] * gf[i] * xf[i];
      }
    } else {
      for (int c = threadIdx.x; c < C; c += blockDim.x) dot += bf2f(w[c]) * bf2f(dyr[c]) * bf2f(xr[c]);
    }
    dot = block_sum(dot, red);
    const float k = dot * r * r * r / float(C);
    if (VEC) {
      for (int c = threadIdx.x * 8; c < C; c += blockDim.x * 8) {
        float xf[8], gf[8], wf[8], df[8];
        load8(xr + c, xf);
        load8(dyr + c, gf);
        load8(w + c, wf);
        load8(dxr + c, df);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          df[i] += r * wf[i] * gf[i] - k * xf[i];
          dw_s[c + i] += gf[i] * xf[i] * r;
        }
        store8(dxr + c, df);
      }
    } else {
      for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float xf = bf2f(xr[c]), gf = bf2f(dyr[c]), wf = bf2f(w[c]);
        dxr[c] = f2bf(bf2f(dxr[c]) + (r * wf * gf - k * xf));
        dw_s[c] += gf * xf * r;
      }
    }
  }
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dw + c, dw_s[c]);
}

// ---- RoPE ------------------------------------------------------------------------------------
__global__ void rope_kernel(bf16* x, const float* cos, const float* sin, int64_t total, int64_t T, int64_t H,
                            int64_t half, float sgn) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t i = idx % half, rest = idx / half;  // rest = (b * T + t) * H + h
    const int64_t t = (rest / H) % T;
    bf16* v = x + rest * 2 * half;
    const float x1 = bf2f(v[i]), x2 = bf2f(v[i + half]);
    const float c = cos[t * half + i], s = sin[t * half + i];
    v[i] = f2bf(x1 * c - sgn * x2 * s);
    v[i + half] = f2bf(x2 * c + sgn * x1 * s);
  }
}

// ---- cuDNN-path helpers ----------------------------------------------------------------------
__global__ void add_rows_kernel(float* dst, int64_t T, int64_t row0, const bf16* src, int64_t n, int64_t B,
                                int64_t W) {
  const int64_t total = B * n * W, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t wcol = i % W, r = (i / W) % n, b = i / (W * n);
    dst[(b * T + row0 + r) * W + wcol] += bf2f(src[i]);
  }
}
__global__ void fill_kernel(float* p, float v, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) p[i] = v;
}
__global__ void gather_rows_kernel(float* dst, const float* src, int64_t BH, int64_t T, int64_t row0, int64_t n) {
  const int64_t total = BH * n, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i % n, bh = i / n;
    dst[i] = src[bh * T + row0 + r];
  }
}

// dst[i] (contiguous) = src[offset of i under the map], or dst[i] += it: the all-to-all's head <->
// sequence reshuffles (ops.h CopyMap). One thread per destination element; consecutive threads
// read consecutive source elements when the innermost stride is 1.
__device__ __forceinline__ float load_f(const float* p) { return *p; }
__device__ __forceinline__ float load_f(const bf16* p) { return bf2f(*p); }
__device__ __forceinline__ void store_f(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_f(bf16* p, float v) { *p = f2bf(v); }

template <class T>
__global__ void permute_copy_kernel(T* dst, const T* src, CopyDims m, int64_t n, int accumulate) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t rest = i, off = 0;
#pragma unroll
    for (int k = 4; k >= 0; --k) {
      off += (rest % m.dims[k]) * m.strides[k];
      rest /= m.dims[k];
    }
    if (accumulate)
      store_f(dst + i, load_f(dst + i) + load_f(src + off));
    else
      dst[i] = src[off];
  }
}

}  // namespace

void permute_copy(void* dst, const void* src, DType t, const CopyDims& m, bool accumulate, cudaStream_t s) {
  const int64_t n = m.dims[0] * m.dims[1] * m.dims[2] * m.dims[3] * m.dims[4];
  if (n <= 0) return;
  const unsigned grid = grid_for(n, kThreads, 16384);
  if (t == DType::F32)
    LCT_LAUNCH(permute_copy_kernel<float>, grid, kThreads, 0, s, static_cast<float*>(dst),
               static_cast<const float*>(src), m, n, accumulate ? 1 : 0);
  else
    LCT_LAUNCH(permute_copy_kernel<bf16>, grid, kThreads, 0, s, static_cast<bf16*>(dst), static_cast<const bf16*>(src),
               m, n, accumulate ? 1 : 0);
}

cudaError_t probe_kernel_image() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, f32_to_bf16_kernel);
}

void convert(void* dst, DType dt, const void* src, DType st, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  if (dt == DType::BF16 && st == DType::F32) {
    LCT_LAUNCH(f32_to_bf16_kernel, grid_for(n, kThreads, 8192), kThreads, 0, s, static_cast<bf16*>(dst),
               static_cast<const float*>(src), n);
  } else if (dt == DType::F32 && st == DType::BF16) {
    LCT_LAUNCH(bf16_to_f32_kernel, grid_for(n, kThreads, 8192), kThreads, 0, s, static_cast<float*>(dst),
               static_cast<const bf16*>(src), n);
  } else {
    LCT_LAUNCH(convert_any_kernel, grid_for(n, kThreads, 8192), kThreads, 0, s, dst, dt, src, st, n);
  }
}

void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, int64_t N, int64_t C, int64_t vocab_begin,
                       int64_t V, cudaStream_t s) {
  if (N <= 0) return;
  const bool vec = C % 8 == 0 && aligned16(out) && aligned16(wte);
  if (vec)
    LCT_LAUNCH(embedding_fwd_kernel<true>, unsigned(N), 128, 0, s, out, tokens, wte, C, vocab_begin, V);
  else
    LCT_LAUNCH(embedding_fwd_kernel<false>, unsigned(N), 128, 0, s, out, tokens, wte, C, vocab_begin, V);
}

void embedding_backward(float* dwte, const bf16* dout, const int32_t* tokens, int64_t N, int64_t C,
                        int64_t vocab_begin, int64_t V, cudaStream_t s) {
  if (N <= 0) return;
  LCT_LAUNCH(embedding_bwd_kernel, unsigned(N), 256, 0, s, dwte, dout, tokens, C, vocab_begin, V);
}

void rmsnorm_forward(bf16* y, float* rstd, const bf16* x, const bf16* w, int64_t N, int64_t C, float eps,
                     cudaStream_t s) {
  if (N <= 0) return;
  const bool vec = C % 8 == 0 && aligned16(y) && aligned16(x) && aligned16(w);
  if (vec)
    LCT_LAUNCH(rmsnorm_fwd_kernel<true>, unsigned(N), kThreads, 0, s, y, rstd, x, w, int(C), eps);
  else
    LCT_LAUNCH(rmsnorm_fwd_kernel<false>, unsigned(N), kThreads, 0, s, y, rstd, x, w, int(C), eps);
}

void rmsnorm_backward(bf16* dx, float* dw, const bf16* dy, const bf16* x, const bf16* w, const float* rstd,
                      int64_t N, int64_t C, int num_sms, cudaStream_t s) {
  if (N <= 0) return;
  const bool vec = C % 8 == 0 && aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(w);
  const size_t smem = size_t(C) * sizeof(float);
  const unsigned grid = unsigned(std::min<int64_t>(N, int64_t(std::max(num_sms, 1)) * 2));
  auto kernel = vec ? rmsnorm_bwd_kernel<true> : rmsnorm_bwd_kernel<false>;
  if (smem > 48 * 1024)
    LCT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  LCT_LAUNCH(kernel, grid, kThreads, smem, s, dx, dw, dy, x, w, rstd, N, int(C));
}

void rope_apply(bf16* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t D,
                int64_t table_rows, bool transpose, cudaStream_t s) {
  const int64_t total = B * T * H * (D / 2);
  if (total <= 0) return;
  // The kernel's row index is (b * T + t) mod table_rows: t for a shared table, b * T + t per sequence.
  LCT_LAUNCH(rope_kernel, grid_for(total, kThreads, 16384), kThreads, 0, s, x, cos, sin, total, table_rows, H, D / 2,
             transpose ? -1.0f : 1.0f);
}

void swiglu_forward(bf16* h, const bf16* gate, const bf16* up, int64_t n, cudaStream_t s) {
  launch_map(MapPtrs<2, 1>{{gate, up}, {h}}, n, SwigluFwd{}, s);
}
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dh, const bf16* gate, const bf16* up, int64_t n,
                     cudaStream_t s) {
  launch_map(MapPtrs<3, 2>{{dh, gate, up}, {dgate, dup}}, n, SwigluBwd{}, s);
}
void add_forward(bf16* y, const bf16* a, const bf16* b, int64_t n, cudaStream_t s) {
  launch_map(MapPtrs<2, 1>{{a, b}, {y}}, n, AddFwd{}, s);
}
void add_backward(bf16* da, bf16* db, const bf16* dy, int64_t n, cudaStream_t s) {
  launch_map(MapPtrs<3, 2>{{dy, da, db}, {da, db}}, n, AddBwd{}, s);
}

void add_rows_bf16_to_f32(float* dst, int64_t T, int64_t row0, const bf16* src, int64_t n, int64_t B, int64_t W,
                          cudaStream_t s) {
  const int64_t total = B * n * W;
  if (total <= 0) return;
  LCT_LAUNCH(add_rows_kernel, grid_for(total, kThreads, 16384), kThreads, 0, s, dst, T, row0, src, n, B, W);
}
void fill_f32(float* p, float v, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  LCT_LAUNCH(fill_kernel, grid_for(n, kThreads, 16384), kThreads, 0, s, p, v, n);
}
void gather_rows_bhT(float* dst, const float* src, int64_t B, int64_t H, int64_t T, int64_t row0, int64_t n,
                     cudaStream_t s) {
  const int64_t total = B * H * n;
  if (total <= 0) return;
  LCT_LAUNCH(gather_rows_kernel, grid_for(total, kThreads, 16384), kThreads, 0, s, dst, src, B * H, T, row0, n);
}

}  // namespace lct::cuda
