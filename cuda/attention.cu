// Blockwise causal attention on tensor cores (FlashAttention-2 style), bf16 inputs, fp32
// accumulation, masked by explicit I32 positions (causal, and by document when each query's
// document start is given: key j visible to query i iff qstart[i] <= kpos[j] <= qpos[i]; positions
// per batch row or shared), GQA by indexing.
//
// Forward: a block owns 64 query rows of one (batch, query head) (16 rows per warp) and walks
// the 64-key tiles of the kv head h / (Hq / Hkv) with an online softmax. K/V tiles stream
// through shared memory with cp.async, double-buffered. Tiles whose key positions lie beyond the
// largest query position of the block, or before its smallest document start, are skipped (in
// backward too); tiles visible to every query need no mask (as the cpu backend's TileBounds).
// Backward: a block owns one 64-key tile of one (batch, kv head); it keeps dK/dV in registers
// and walks the 32-row query tiles of every query head of the group (recomputing P from the
// saved log-sum-exp); dQ is added to the f32 dq with atomics (as FlashAttention-2 does).
//
// Matrix products use mma.sync.m16n8k16 (bf16 x bf16 -> f32, sm_80+). Fragment layouts (PTX ISA,
// "Matrix Fragments for mma.m16n8k16"), with g = lane / 4 and t = lane % 4:
//   A (16x16, row): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16x8, col):  b0 = (k = 2t..2t+1, n = g), b1 = (k = 2t+8..2t+9, n = g)
//   C (16x8, f32):  c0,c1 = (g, 2t, 2t+1), c2,c3 = (g+8, 2t, 2t+1)
// The C fragments of two adjacent 8-column tiles are exactly an A fragment of the next product,
// so P (and dS) go from one mma to the next without shared memory. Shared-memory rows are
// padded by 8 bf16 so the fragment loads of 8 rows x 4 threads hit 32 different banks.
// The same source compiles on the host under the CUDA emulator (cuda/device_api.cuh,
// cuda/emu/), which runs each block as fibers and emulates mma.sync, shuffles and cp.async, so
// the fragment indexing, masking and online softmax are tested without a GPU
// (test_cuda_ops_emulated).
#include "cuda/device_api.cuh"

#include <climits>
#include <cmath>

#include "cuda/cuda_check.h"
#include "cuda/kernels.h"

namespace lct::cuda {
namespace {

constexpr int kBM = 64;   // forward: query rows per block
constexpr int kBN = 64;   // keys per tile (forward and backward)
constexpr int kBMb = 32;  // backward: query rows per step
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float shfl_xor(float v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }

__device__ __forceinline__ float bf2f(bf16 h) { return __bfloat162float(h); }
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += shfl_xor(x, o);
  return x;
}

// Two consecutive bf16 in shared memory (even column) as one register.
__device__ __forceinline__ uint32_t ld32(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }
// Two bf16 from different rows packed (lo = first).
__device__ __forceinline__ uint32_t pack2(const bf16* lo, const bf16* hi) {
  return uint32_t(__bfloat16_as_ushort(*lo)) | (uint32_t(__bfloat16_as_ushort(*hi)) << 16);
}
__device__ __forceinline__ uint32_t pack_f2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return uint32_t(__bfloat16_as_ushort(v.x)) | (uint32_t(__bfloat16_as_ushort(v.y)) << 16);
}

// Rows [row0, row0 + ROWS) of one head of a [B, T, H, D] tensor into shared [ROWS][D + 8];
// rows at or beyond `nrows` are zero-filled. `head` points at (b, t = 0, h, 0); rows are
// `row_stride` elements apart.
template <int D, int ROWS>
__device__ __forceinline__ void load_rows_async(bf16* s, const bf16* head, int64_t row_stride, int64_t row0,
                                                int64_t nrows) {
  constexpr int CH = D / 8, LD = D + 8;
  for (int c = threadIdx.x; c < ROWS * CH; c += kThreads) {
    const int r = c / CH, k = c % CH;
    const int64_t row = row0 + r;
    const bool ok = row < nrows;
    cp_async16(s + r * LD + k * 8, head + (ok ? row : 0) * row_stride + k * 8, ok);
  }
}

// ---- tile bounds, delta, merge -----------------------------------------------------------------
// Per (row, tile): (min, max) of the positions and of the document starts (INT_MIN without them).
__global__ void tile_bounds_kernel(int32_t* bounds, const int32_t* pos, const int32_t* start, int64_t n,
                                   int64_t stride, int blk, int64_t ntiles, int64_t rows) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= ntiles * rows) return;
  const int64_t i = idx % ntiles, row = idx / ntiles;
  const int32_t* p = pos + row * stride;
  const int32_t* st = start ? start + row * stride : nullptr;
  int32_t lo = INT_MAX, hi = INT_MIN, slo = INT_MIN, shi = INT_MIN;
  if (st) slo = INT_MAX;
  const int64_t e = n < (i + 1) * blk ? n : (i + 1) * blk;
  for (int64_t j = i * blk; j < e; ++j) {
    const int32_t x = p[j];
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
    if (st) {
      slo = st[j] < slo ? st[j] : slo;
      shi = st[j] > shi ? st[j] : shi;
    }
  }
  int32_t* out = bounds + 4 * idx;
  out[0] = lo;
  out[1] = hi;
  out[2] = slo;
  out[3] = shi;
}

// delta[b, h, t] = sum_d dout[b, t, h, d] * out[b, t, h, d]; one warp per row.
__global__ void delta_kernel(float* delta, const bf16* dout, const float* out, int64_t B, int64_t Tq, int64_t Hq,
                             int D) {
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= B * Tq * Hq) return;
  const bf16* d = dout + row * D;
  const float* o = out + row * D;
  float acc = 0;
  for (int e = lane; e < D; e += 32) acc += bf2f(d[e]) * o[e];
  acc = warp_sum(acc);
  if (lane == 0) {
    const int64_t h = row % Hq, bt = row / Hq, t = bt % Tq, b = bt / Tq;
    delta[(b * Hq + h) * Tq + t] = acc;
  }
}

template <class TB> __device__ __forceinline__ float ldf(const TB* p) { return float(*p); }
template <> __device__ __forceinline__ float ldf<bf16>(const bf16* p) { return bf2f(*p); }

// One warp per (b, row, h) of the partial block.
template <class TB>
__global__ void merge_kernel(float* out, float* lse, const TB* out_b, const float* lse_b, int64_t B, int64_t Tq,
                             int64_t row0, int64_t Tb, int64_t H, int D) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (w >= B * Tb * H) return;
  const int64_t h = w % H, br = w / H, r = br % Tb, b = br / Tb;
  const int64_t li = (b * H + h) * Tq + row0 + r;
  const float L = lse[li], Lb = lse_b[(b * H + h) * Tb + r];
  __syncwarp();  // every lane has read L before lane 0 overwrites it
  float* o = out + ((b * Tq + row0 + r) * H + h) * D;
  const TB* ob = out_b + ((b * Tb + r) * H + h) * D;
  if (Lb == -INFINITY) return;
  if (L == -INFINITY) {
    for (int e = lane; e < D; e += 32) o[e] = ldf(ob + e);
    if (lane == 0) lse[li] = Lb;
    return;
  }
  const float mx = fmaxf(L, Lb);
  const float nl = mx + logf(expf(L - mx) + expf(Lb - mx));
  const float wa = expf(L - nl), wb = expf(Lb - nl);
  for (int e = lane; e < D; e += 32) o[e] = wa * o[e] + wb * ldf(ob + e);
  if (lane == 0) lse[li] = nl;
}

// ---- forward ---------------------------------------------------------------------------------
struct FwdArgs {
  const bf16 *q, *k, *v;
  const int32_t *qpos, *kpos, *qstart;  // qstart may be null
  int64_t qs, ks;                       // row strides of the positions (0: shared by the rows)
  const int32_t *qb, *kb;  // per (row, tile): (min, max) positions, (min, max) document starts
  float *out, *lse;
  int64_t B, Tq, Tk, Hq, Hkv;
  float scale_log2;
};

template <int D> constexpr size_t fwd_smem_bytes() {
  return size_t(kBM + 4 * kBN) * (D + 8) * sizeof(bf16) + 2 * kBN * sizeof(int32_t);
}

template <int D>
__global__ void __launch_bounds__(kThreads) attn_fwd_kernel(FwdArgs a) {
  constexpr int LD = D + 8, KD = D / 16, ND = D / 8, NT = kBN / 8;
  LCT_DYNAMIC_SMEM(unsigned char, smem_raw);
  bf16* Qs = reinterpret_cast<bf16*>(smem_raw);
  bf16* Ks = Qs + kBM * LD;      // [2][kBN][LD]
  bf16* Vs = Ks + 2 * kBN * LD;  // [2][kBN][LD]
  int32_t* kp_s = reinterpret_cast<int32_t*>(Vs + 2 * kBN * LD);  // [2][kBN]

  const int64_t qt = int64_t(gridDim.x) - 1 - blockIdx.x;  // late (heavy) query tiles first
  const int64_t h = blockIdx.y % a.Hq, b = blockIdx.y / a.Hq, hk = h / (a.Hq / a.Hkv);
  const int64_t q0 = qt * kBM;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const bf16* qhead = a.q + (b * a.Tq * a.Hq + h) * D;
  const bf16* khead = a.k + (b * a.Tk * a.Hkv + hk) * D;
  const bf16* vhead = a.v + (b * a.Tk * a.Hkv + hk) * D;
  const int64_t nk = (a.Tk + kBN - 1) / kBN;
  const int32_t* qbt = a.qb + 4 * ((a.qs ? b : 0) * int64_t(gridDim.x) + qt);
  const int32_t* kbr = a.kb + 4 * (a.ks ? b : 0) * nk;
  const int32_t q_lo = qbt[0], q_hi = qbt[1], s_lo = qbt[2], s_hi = qbt[3];
  const int32_t* qpos = a.qpos + b * a.qs;
  const int32_t* kpos = a.kpos + b * a.ks;

  auto visible = [&](int64_t j) { return kbr[4 * j] <= q_hi && kbr[4 * j + 1] >= s_lo; };
  auto issue_kv = [&](int64_t j, int buf) {
    const int64_t k0 = j * kBN;
    load_rows_async<D, kBN>(Ks + buf * kBN * LD, khead, a.Hkv * D, k0, a.Tk);
    load_rows_async<D, kBN>(Vs + buf * kBN * LD, vhead, a.Hkv * D, k0, a.Tk);
    for (int i = threadIdx.x; i < kBN; i += kThreads) kp_s[buf * kBN + i] = k0 + i < a.Tk ? kpos[k0 + i] : INT_MAX;
  };

  load_rows_async<D, kBM>(Qs, qhead, a.Hq * D, q0, a.Tq);
  int64_t j = 0;
  while (j < nk && !visible(j)) ++j;
  if (j < nk) issue_kv(j, 0);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  const int row0 = warp * 16 + g;  // this thread's rows in the tile: row0 and row0 + 8
  const int32_t qp0 = q0 + row0 < a.Tq ? qpos[q0 + row0] : INT_MIN;
  const int32_t qp1 = q0 + row0 + 8 < a.Tq ? qpos[q0 + row0 + 8] : INT_MIN;
  const int32_t* qstart = a.qstart ? a.qstart + b * a.qs : nullptr;
  const int32_t qs0 = qstart && q0 + row0 < a.Tq ? qstart[q0 + row0] : INT_MIN;
  const int32_t qs1 = qstart && q0 + row0 + 8 < a.Tq ? qstart[q0 + row0 + 8] : INT_MIN;
  uint32_t qa[KD][4];
#pragma unroll
  for (int kk = 0; kk < KD; ++kk) {
    qa[kk][0] = ld32(Qs + row0 * LD + kk * 16 + 2 * t);
    qa[kk][1] = ld32(Qs + (row0 + 8) * LD + kk * 16 + 2 * t);
    qa[kk][2] = ld32(Qs + row0 * LD + kk * 16 + 8 + 2 * t);
    qa[kk][3] = ld32(Qs + (row0 + 8) * LD + kk * 16 + 8 + 2 * t);
  }

  float o[ND][4];
#pragma unroll
  for (int dn = 0; dn < ND; ++dn) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

  int buf = 0;
  while (j < nk) {
    int64_t jn = j + 1;
    while (jn < nk && !visible(jn)) ++jn;
    if (jn < nk) issue_kv(jn, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // tile j has landed (only the group just issued may be pending)
    __syncthreads();

    const bf16* Kt = Ks + buf * kBN * LD;
    const bf16* Vt = Vs + buf * kBN * LD;
    const int32_t* kp = kp_s + buf * kBN;
    const bool full = kbr[4 * j + 1] <= q_lo && kbr[4 * j] >= s_hi && (j + 1) * kBN <= a.Tk;

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float sc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        const bf16* kr = Kt + (nt * 8 + g) * LD + kk * 16 + 2 * t;
        mma_bf16(sc[nt], qa[kk], ld32(kr), ld32(kr + 8));
      }
    }
    // Scale into the log2 domain, mask by position, row maxima (rows spread over 4 threads).
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float x0 = sc[nt][e] * a.scale_log2, x1 = sc[nt][2 + e] * a.scale_log2;
        if (!full) {
          const int32_t kpv = kp[nt * 8 + 2 * t + e];
          if (kpv > qp0 || kpv < qs0) x0 = -INFINITY;
          if (kpv > qp1 || kpv < qs1) x1 = -INFINITY;
        }
        sc[nt][e] = x0;
        sc[nt][2 + e] = x1;
        mx0 = fmaxf(mx0, x0);
        mx1 = fmaxf(mx1, x1);
      }
    }
    mx0 = fmaxf(mx0, shfl_xor(mx0, 1));
    mx0 = fmaxf(mx0, shfl_xor(mx0, 2));
    mx1 = fmaxf(mx1, shfl_xor(mx1, 1));
    mx1 = fmaxf(mx1, shfl_xor(mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    // A row with nothing visible yet keeps m = -inf; subtract 0 instead so no -inf - -inf appears.
    const float mu0 = mn0 == -INFINITY ? 0.0f : mn0, mu1 = mn1 == -INFINITY ? 0.0f : mn1;
    const float alpha0 = exp2f(m0 - mu0), alpha1 = exp2f(m1 - mu1);
    m0 = mn0;
    m1 = mn1;
    float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        sc[nt][e] = exp2f(sc[nt][e] - mu0);
        sc[nt][2 + e] = exp2f(sc[nt][2 + e] - mu1);
        ps0 += sc[nt][e];
        ps1 += sc[nt][2 + e];
      }
    }
    l0 = l0 * alpha0 + ps0;
    l1 = l1 * alpha1 + ps1;
#pragma unroll
    for (int dn = 0; dn < ND; ++dn) {
      o[dn][0] *= alpha0;
      o[dn][1] *= alpha0;
      o[dn][2] *= alpha1;
      o[dn][3] *= alpha1;
    }
    // O += P V: P's C fragments are the A fragments; V is read as B (k = key, n = d).
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const uint32_t pa[4] = {pack_f2(sc[2 * kk][0], sc[2 * kk][1]), pack_f2(sc[2 * kk][2], sc[2 * kk][3]),
                              pack_f2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              pack_f2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
      const bf16* vr = Vt + (kk * 16 + 2 * t) * LD + g;
#pragma unroll
      for (int dn = 0; dn < ND; ++dn) {
        const bf16* vc = vr + dn * 8;
        mma_bf16(o[dn], pa, pack2(vc, vc + LD), pack2(vc + 8 * LD, vc + 9 * LD));
      }
    }
    __syncthreads();  // every warp is done with `buf` before it is refilled
    buf ^= 1;
    j = jn;
  }
  cp_async_wait<0>();

  l0 += shfl_xor(l0, 1);
  l0 += shfl_xor(l0, 2);
  l1 += shfl_xor(l1, 1);
  l1 += shfl_xor(l1, 2);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t r = q0 + row0 + half * 8;
    if (r >= a.Tq) continue;
    const float l = half ? l1 : l0, m = half ? m1 : m0;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* orow = a.out + ((b * a.Tq + r) * a.Hq + h) * D;
#pragma unroll
    for (int dn = 0; dn < ND; ++dn)
      *reinterpret_cast<float2*>(orow + dn * 8 + 2 * t) = make_float2(o[dn][2 * half] * inv, o[dn][2 * half + 1] * inv);
    if (t == 0) a.lse[(b * a.Hq + h) * a.Tq + r] = l > 0.0f ? (m + log2f(l)) * kLn2 : -INFINITY;
  }
}

// ---- backward --------------------------------------------------------------------------------
struct BwdArgs {
  const bf16 *q, *k, *v, *dout;
  const int32_t *qpos, *kpos, *qstart;  // qstart may be null
  int64_t qs, ks;                       // row strides of the positions (0: shared by the rows)
  const int32_t *qb, *kb;  // per (row, tile) bounds as FwdArgs: query tiles of kBMb, key tiles of kBN
  const float *lse, *delta;
  float *dq, *dk, *dv;
  int64_t B, Tq, Tk, Hq, Hkv;
  float scale, scale_log2;
};

template <int D> constexpr size_t bwd_smem_bytes() {
  return size_t(2 * kBN + 4 * kBMb) * (D + 8) * sizeof(bf16) + size_t(kBMb) * (kBN + 8) * sizeof(bf16) +
         4 * 2 * kBMb * sizeof(float);
}

template <int D>
__global__ void __launch_bounds__(kThreads) attn_bwd_kernel(BwdArgs a) {
  constexpr int LD = D + 8, LDS = kBN + 8, KD = D / 16, ND = D / 8, NTQ = kBMb / 8, NDH = D / 16;
  LCT_DYNAMIC_SMEM(unsigned char, smem_raw);
  bf16* Ks = reinterpret_cast<bf16*>(smem_raw);  // [kBN][LD]
  bf16* Vs = Ks + kBN * LD;                      // [kBN][LD]
  bf16* Qs = Vs + kBN * LD;                      // [2][kBMb][LD]
  bf16* dOs = Qs + 2 * kBMb * LD;                // [2][kBMb][LD]
  bf16* dSs = dOs + 2 * kBMb * LD;               // [kBMb][LDS], dS as [query][key]
  float* lse_s = reinterpret_cast<float*>(dSs + kBMb * LDS);  // [2][kBMb], log2 units, +inf = no key
  float* delta_s = lse_s + 2 * kBMb;                          // [2][kBMb]
  int32_t* qp_s = reinterpret_cast<int32_t*>(delta_s + 2 * kBMb);  // [2][kBMb]
  int32_t* qs_s = qp_s + 2 * kBMb;                                   // [2][kBMb] document starts

  const int64_t kt = blockIdx.x;
  const int64_t hk = blockIdx.y % a.Hkv, b = blockIdx.y / a.Hkv;
  const int64_t grp = a.Hq / a.Hkv, k0 = kt * kBN;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int32_t* kbt = a.kb + 4 * ((a.ks ? b : 0) * int64_t(gridDim.x) + kt);
  const int32_t k_lo = kbt[0], k_hi = kbt[1];
  const bool k_partial = k0 + kBN > a.Tk;
  const int64_t nqs = (a.Tq + kBMb - 1) / kBMb, total = grp * nqs;
  const int32_t* qbr = a.qb + 4 * (a.qs ? b : 0) * nqs;
  const int32_t* qpos = a.qpos + b * a.qs;
  const int32_t* qstart = a.qstart ? a.qstart + b * a.qs : nullptr;
  const int32_t* kpos = a.kpos + b * a.ks;

  load_rows_async<D, kBN>(Ks, a.k + (b * a.Tk * a.Hkv + hk) * D, a.Hkv * D, k0, a.Tk);
  load_rows_async<D, kBN>(Vs, a.v + (b * a.Tk * a.Hkv + hk) * D, a.Hkv * D, k0, a.Tk);
  const int key0 = warp * 16 + g;  // this thread's keys in the tile: key0 and key0 + 8
  const int32_t kp0 = k0 + key0 < a.Tk ? kpos[k0 + key0] : INT_MAX;
  const int32_t kp1 = k0 + key0 + 8 < a.Tk ? kpos[k0 + key0 + 8] : INT_MAX;

  auto visible = [&](int64_t idx) {
    const int32_t* qb = qbr + 4 * (idx % nqs);
    return qb[1] >= k_lo && qb[2] <= k_hi;
  };
  auto issue_q = [&](int64_t idx, int buf) {
    const int64_t h = hk * grp + idx / nqs, q0 = (idx % nqs) * kBMb;
    const int64_t head = (b * a.Tq * a.Hq + h) * D;
    load_rows_async<D, kBMb>(Qs + buf * kBMb * LD, a.q + head, a.Hq * D, q0, a.Tq);
    load_rows_async<D, kBMb>(dOs + buf * kBMb * LD, a.dout + head, a.Hq * D, q0, a.Tq);
    for (int i = threadIdx.x; i < kBMb; i += kThreads) {
      const int64_t r = q0 + i;
      const bool ok = r < a.Tq;
      const float L = ok ? a.lse[(b * a.Hq + h) * a.Tq + r] : -INFINITY;
      lse_s[buf * kBMb + i] = L == -INFINITY ? INFINITY : L * kLog2e;  // P = 0 for rows without keys
      delta_s[buf * kBMb + i] = ok ? a.delta[(b * a.Hq + h) * a.Tq + r] : 0.0f;
      qp_s[buf * kBMb + i] = ok ? qpos[r] : INT_MIN;
      qs_s[buf * kBMb + i] = ok && qstart ? qstart[r] : INT_MIN;
    }
  };

  int64_t idx = 0;
  while (idx < total && !visible(idx)) ++idx;
  if (idx < total) issue_q(idx, 0);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  float dk[ND][4], dv[ND][4];
#pragma unroll
  for (int dn = 0; dn < ND; ++dn)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[dn][e] = dv[dn][e] = 0.0f;

  int buf = 0;
  while (idx < total) {
    int64_t nidx = idx + 1;
    while (nidx < total && !visible(nidx)) ++nidx;
    if (nidx < total) issue_q(nidx, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    const int64_t qi = idx % nqs, h = hk * grp + idx / nqs, q0 = qi * kBMb;
    const bool full = k_hi <= qbr[4 * qi] && k_lo >= qbr[4 * qi + 3] && !k_partial;
    const bf16* Q = Qs + buf * kBMb * LD;
    const bf16* dO = dOs + buf * kBMb * LD;
    const float* L = lse_s + buf * kBMb;
    const float* Dl = delta_s + buf * kBMb;
    const int32_t* QP = qp_s + buf * kBMb;
    const int32_t* QS = qs_s + buf * kBMb;

    // S^T = K Q^T (this warp's 16 keys x 32 queries) and dP^T = V dO^T.
    float st[NTQ][4], dpt[NTQ][4];
#pragma unroll
    for (int nt = 0; nt < NTQ; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[nt][e] = dpt[nt][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      const uint32_t ka[4] = {ld32(Ks + key0 * LD + kk * 16 + 2 * t), ld32(Ks + (key0 + 8) * LD + kk * 16 + 2 * t),
                              ld32(Ks + key0 * LD + kk * 16 + 8 + 2 * t),
                              ld32(Ks + (key0 + 8) * LD + kk * 16 + 8 + 2 * t)};
      const uint32_t va[4] = {ld32(Vs + key0 * LD + kk * 16 + 2 * t), ld32(Vs + (key0 + 8) * LD + kk * 16 + 2 * t),
                              ld32(Vs + key0 * LD + kk * 16 + 8 + 2 * t),
                              ld32(Vs + (key0 + 8) * LD + kk * 16 + 8 + 2 * t)};
#pragma unroll
      for (int nt = 0; nt < NTQ; ++nt) {
        const bf16* qr = Q + (nt * 8 + g) * LD + kk * 16 + 2 * t;
        mma_bf16(st[nt], ka, ld32(qr), ld32(qr + 8));
        const bf16* dr = dO + (nt * 8 + g) * LD + kk * 16 + 2 * t;
        mma_bf16(dpt[nt], va, ld32(dr), ld32(dr + 8));
      }
    }
    // P^T = exp(S^T * scale - lse) with the causal mask; dS^T = P^T (dP^T - delta).
#pragma unroll
    for (int nt = 0; nt < NTQ; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int qc = nt * 8 + 2 * t + e;
        float p0 = exp2f(st[nt][e] * a.scale_log2 - L[qc]);
        float p1 = exp2f(st[nt][2 + e] * a.scale_log2 - L[qc]);
        if (!full) {
          const int32_t qp = QP[qc], qs = QS[qc];
          if (kp0 > qp || kp0 < qs) p0 = 0.0f;
          if (kp1 > qp || kp1 < qs) p1 = 0.0f;
        }
        st[nt][e] = p0;
        st[nt][2 + e] = p1;
        dpt[nt][e] = p0 * (dpt[nt][e] - Dl[qc]);
        dpt[nt][2 + e] = p1 * (dpt[nt][2 + e] - Dl[qc]);
      }
    }
    // dV += P^T dO and dK += dS^T Q (queries are the reduction dimension).
#pragma unroll
    for (int kq = 0; kq < kBMb / 16; ++kq) {
      const uint32_t pa[4] = {pack_f2(st[2 * kq][0], st[2 * kq][1]), pack_f2(st[2 * kq][2], st[2 * kq][3]),
                              pack_f2(st[2 * kq + 1][0], st[2 * kq + 1][1]),
                              pack_f2(st[2 * kq + 1][2], st[2 * kq + 1][3])};
      const uint32_t da[4] = {pack_f2(dpt[2 * kq][0], dpt[2 * kq][1]), pack_f2(dpt[2 * kq][2], dpt[2 * kq][3]),
                              pack_f2(dpt[2 * kq + 1][0], dpt[2 * kq + 1][1]),
                              pack_f2(dpt[2 * kq + 1][2], dpt[2 * kq + 1][3])};
      const bf16* dor = dO + (kq * 16 + 2 * t) * LD + g;
      const bf16* qr = Q + (kq * 16 + 2 * t) * LD + g;
#pragma unroll
      for (int dn = 0; dn < ND; ++dn) {
        const bf16* oc = dor + dn * 8;
        mma_bf16(dv[dn], pa, pack2(oc, oc + LD), pack2(oc + 8 * LD, oc + 9 * LD));
        const bf16* qc = qr + dn * 8;
        mma_bf16(dk[dn], da, pack2(qc, qc + LD), pack2(qc + 8 * LD, qc + 9 * LD));
      }
    }
    // dS to shared memory as [query][key] for dQ = dS K.
#pragma unroll
    for (int nt = 0; nt < NTQ; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int qc = nt * 8 + 2 * t + e;
        dSs[qc * LDS + key0] = __float2bfloat16_rn(dpt[nt][e]);
        dSs[qc * LDS + key0 + 8] = __float2bfloat16_rn(dpt[nt][2 + e]);
      }
    __syncthreads();
    // dQ rows (warp & 1) * 16 .. + 15, columns (warp >> 1) * D/2 .. + D/2 - 1.
    {
      const int qr0 = (warp & 1) * 16 + g, c0 = (warp >> 1) * (D / 2);
      float dqa[NDH][4];
#pragma unroll
      for (int dn = 0; dn < NDH; ++dn) dqa[dn][0] = dqa[dn][1] = dqa[dn][2] = dqa[dn][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint32_t sa[4] = {ld32(dSs + qr0 * LDS + kk * 16 + 2 * t), ld32(dSs + (qr0 + 8) * LDS + kk * 16 + 2 * t),
                                ld32(dSs + qr0 * LDS + kk * 16 + 8 + 2 * t),
                                ld32(dSs + (qr0 + 8) * LDS + kk * 16 + 8 + 2 * t)};
        const bf16* kr = Ks + (kk * 16 + 2 * t) * LD + c0 + g;
#pragma unroll
        for (int dn = 0; dn < NDH; ++dn) {
          const bf16* kc = kr + dn * 8;
          mma_bf16(dqa[dn], sa, pack2(kc, kc + LD), pack2(kc + 8 * LD, kc + 9 * LD));
        }
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t r = q0 + qr0 + half * 8;
        if (r >= a.Tq) continue;
        float* dqrow = a.dq + ((b * a.Tq + r) * a.Hq + h) * D + c0 + 2 * t;
#pragma unroll
        for (int dn = 0; dn < NDH; ++dn) {
          atomic_add(dqrow + dn * 8, dqa[dn][2 * half] * a.scale);
          atomic_add(dqrow + dn * 8 + 1, dqa[dn][2 * half + 1] * a.scale);
        }
      }
    }
    __syncthreads();  // Q/dO of `buf` and dS are rewritten next
    buf ^= 1;
    idx = nidx;
  }
  cp_async_wait<0>();

  // This block owns its keys' dK/dV rows: plain read-modify-write.
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t key = k0 + key0 + half * 8;
    if (key >= a.Tk) continue;
    const int64_t off = ((b * a.Tk + key) * a.Hkv + hk) * D + 2 * t;
#pragma unroll
    for (int dn = 0; dn < ND; ++dn) {
      float2* pk = reinterpret_cast<float2*>(a.dk + off + dn * 8);
      float2* pv = reinterpret_cast<float2*>(a.dv + off + dn * 8);
      float2 xk = *pk, xv = *pv;
      xk.x += dk[dn][2 * half] * a.scale;
      xk.y += dk[dn][2 * half + 1] * a.scale;
      xv.x += dv[dn][2 * half];
      xv.y += dv[dn][2 * half + 1];
      *pk = xk;
      *pv = xv;
    }
  }
}

// Bounds of the positions (and document starts) in tiles of blk: one row, or B rows stride apart.
void tile_bounds(int32_t* bounds, const int32_t* pos, const int32_t* start, int64_t n, int64_t stride, int64_t B,
                 int blk, cudaStream_t s) {
  const int64_t ntiles = (n + blk - 1) / blk, rows = stride ? B : 1;
  if (ntiles == 0) return;
  LCT_LAUNCH(tile_bounds_kernel, unsigned((ntiles * rows + 127) / 128), 128, 0, s, bounds, pos, start, n, stride, blk,
             ntiles, rows);
}

template <int D> void launch_fwd(const FwdArgs& a, unsigned nq, cudaStream_t s) {
  constexpr size_t smem = fwd_smem_bytes<D>();
  if (smem > 48 * 1024)
    LCT_CUDA_CHECK(cudaFuncSetAttribute(attn_fwd_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  LCT_LAUNCH(attn_fwd_kernel<D>, dim3(nq, unsigned(a.B * a.Hq)), kThreads, smem, s, a);
}

template <int D> void launch_bwd(const BwdArgs& a, unsigned nk, cudaStream_t s) {
  constexpr size_t smem = bwd_smem_bytes<D>();
  if (smem > 48 * 1024)
    LCT_CUDA_CHECK(cudaFuncSetAttribute(attn_bwd_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  LCT_LAUNCH(attn_bwd_kernel<D>, dim3(nk, unsigned(a.B * a.Hkv)), kThreads, smem, s, a);
}

}  // namespace

bool attention_head_dim_supported(int64_t D) { return D == 16 || D == 32 || D == 64 || D == 128; }

int64_t attention_bounds_ints(const AttnDims& d, const AttnPositions& p) {
  // The backward's query tiles (kBMb rows) are the smaller ones: its bounds are the larger.
  return 4 * ((p.q_stride ? d.B : 1) * ((d.Tq + kBMb - 1) / kBMb) + (p.k_stride ? d.B : 1) * ((d.Tk + kBN - 1) / kBN));
}
int64_t attention_delta_floats(const AttnDims& d) { return d.B * d.Hq * d.Tq; }

void attention_forward(float* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const AttnPositions& p,
                       const AttnDims& d, int32_t* bounds, cudaStream_t s) {
  if (d.B * d.Hq * d.Tq == 0) return;
  LCT_CHECK(attention_head_dim_supported(d.D), "attention head dim ", d.D);
  LCT_CHECK(d.B * d.Hq <= 65535, "attention: B * Hq = ", d.B * d.Hq, " exceeds the grid limit 65535");
  const int64_t nq = (d.Tq + kBM - 1) / kBM, kb_off = 4 * (p.q_stride ? d.B : 1) * nq;
  tile_bounds(bounds, p.qpos, p.qstart, d.Tq, p.q_stride, d.B, kBM, s);
  tile_bounds(bounds + kb_off, p.kpos, nullptr, d.Tk, p.k_stride, d.B, kBN, s);
  FwdArgs a{q, k, v, p.qpos, p.kpos, p.qstart, p.q_stride, p.k_stride, bounds, bounds + kb_off, out, lse, d.B, d.Tq,
            d.Tk, d.Hq, d.Hkv, kLog2e / sqrtf(float(d.D))};
  switch (d.D) {
    case 16: launch_fwd<16>(a, unsigned(nq), s); break;
    case 32: launch_fwd<32>(a, unsigned(nq), s); break;
    case 64: launch_fwd<64>(a, unsigned(nq), s); break;
    case 128: launch_fwd<128>(a, unsigned(nq), s); break;
  }
}

void attention_backward(float* dq, float* dk, float* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const AttnPositions& p, const float* out, const float* lse,
                        const AttnDims& d, int32_t* bounds, float* delta, cudaStream_t s) {
  if (d.B * d.Hq * d.Tq == 0 || d.Tk == 0) return;
  LCT_CHECK(attention_head_dim_supported(d.D), "attention head dim ", d.D);
  LCT_CHECK(d.B * d.Hkv <= 65535, "attention: B * Hkv = ", d.B * d.Hkv, " exceeds the grid limit 65535");
  const int64_t rows = d.B * d.Tq * d.Hq;
  LCT_LAUNCH(delta_kernel, unsigned((rows * 32 + 255) / 256), 256, 0, s, delta, dout, out, d.B, d.Tq, d.Hq,
             int(d.D));
  const int64_t nqs = (d.Tq + kBMb - 1) / kBMb, nk = (d.Tk + kBN - 1) / kBN;
  const int64_t kb_off = 4 * (p.q_stride ? d.B : 1) * nqs;
  tile_bounds(bounds, p.qpos, p.qstart, d.Tq, p.q_stride, d.B, kBMb, s);
  tile_bounds(bounds + kb_off, p.kpos, nullptr, d.Tk, p.k_stride, d.B, kBN, s);
  const float scale = 1.0f / sqrtf(float(d.D));
  BwdArgs a{q, k, v, dout, p.qpos, p.kpos, p.qstart, p.q_stride, p.k_stride, bounds, bounds + kb_off, lse, delta,
            dq, dk, dv, d.B, d.Tq, d.Tk, d.Hq, d.Hkv, scale, scale * kLog2e};
  switch (d.D) {
    case 16: launch_bwd<16>(a, unsigned(nk), s); break;
    case 32: launch_bwd<32>(a, unsigned(nk), s); break;
    case 64: launch_bwd<64>(a, unsigned(nk), s); break;
    case 128: launch_bwd<128>(a, unsigned(nk), s); break;
  }
}

void attention_merge(float* out, float* lse, const void* out_b, DType out_b_t, const float* lse_b, int64_t B,
                     int64_t Tq, int64_t row0, int64_t Tb, int64_t H, int64_t D, cudaStream_t s) {
  const int64_t warps = B * Tb * H;
  if (warps == 0) return;
  const unsigned grid = unsigned((warps * 32 + 255) / 256);
  if (out_b_t == DType::F32)
    LCT_LAUNCH(merge_kernel<float>, grid, 256, 0, s, out, lse, static_cast<const float*>(out_b), lse_b, B, Tq, row0,
               Tb, H, int(D));
  else
    LCT_LAUNCH(merge_kernel<bf16>, grid, 256, 0, s, out, lse, static_cast<const bf16*>(out_b), lse_b, B, Tq, row0, Tb,
               H, int(D));
}

}  // namespace lct::cuda
