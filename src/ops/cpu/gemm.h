// A cache-blocked GEMM for the linear layers and the LM head, built on the attention tiles'
// register-blocked kernel (tile_gemm_block: 4 rows x 4 vectors of C in registers):
//   C[M, N] = alpha * A B  (+ C when accumulate), A(i, k) = a[i * a_rs + k * a_cs],
//                                                  B(k, n) = b[k * b_rs + n * b_cs]
// so x W^T, dy W and dy^T x are the same call with different strides. Work is split into
// (row block, column block) tasks, each packing its own operands (Goto/BLIS layout: B in
// [64-column panels][kc][64] so one panel stays in L1 while 4-row panels of A, packed [kc][4],
// stream past it). No synchronisation between tasks; the packing is < 1% of the arithmetic.
//
// Why not Eigen's GEMM: on this AVX-512 machine it reaches ~75% of the FMA peak (its kernel
// reloads B from memory for every FMA); this one keeps B in registers and reaches ~95%.
#pragma once

#include <algorithm>
#include <cstdint>

#include <omp.h>

#include "ops/cpu/simd.h"
#include "ops/cpu/tile_gemm.h"

namespace lct::cpu {

// Measured on the 2-core AVX-512 machine (fp32, 1 thread, the 50M model's shapes): kc/mc/nc =
// 96/128/512 gives 92 GFLOP/s, 256/512/512 gives 100; Eigen 81.
struct GemmBlocking {
  int64_t kc = 256;  // depth per pass
  int64_t mc = 512;  // rows of A per task (packed A block 512 KiB, with the B block ~ L2)
  int64_t nc = 512;  // columns per task (fewer when the threads need more tasks)
};

namespace gemm_detail {

constexpr int64_t kPanel = 64;  // columns of a packed B panel (4 float vectors; 8 double vectors)

template <class T>
void pack_b(T* dst, const T* b, int64_t b_rs, int64_t b_cs, int64_t k0, int64_t kc, int64_t n0, int64_t nc) {
  for (int64_t p = 0; p < nc; p += kPanel) {
    const int64_t w = std::min(kPanel, nc - p);
    T* out = dst + p * kc;  // this panel: [kc][kPanel]
    for (int64_t k = 0; k < kc; ++k) {
      T* row = out + k * kPanel;
      const T* src = b + (k0 + k) * b_rs + (n0 + p) * b_cs;
      if (b_cs == 1)
        std::copy(src, src + w, row);
      else
        for (int64_t c = 0; c < w; ++c) row[c] = src[c * b_cs];
      std::fill(row + w, row + kPanel, T(0));
    }
  }
}

template <class T>
void pack_a(T* dst, const T* a, int64_t a_rs, int64_t a_cs, int64_t i0, int64_t mc, int64_t k0, int64_t kc) {
  for (int64_t q = 0; q < mc; q += 4) {
    const int64_t r_n = std::min<int64_t>(4, mc - q);
    T* out = dst + q * kc;  // this micro-panel: [kc][4]
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = a + (i0 + q) * a_rs + (k0 + k) * a_cs;
      for (int64_t r = 0; r < r_n; ++r) out[k * 4 + r] = src[r * a_rs];
      for (int64_t r = r_n; r < 4; ++r) out[k * 4 + r] = T(0);
    }
  }
}

// dst[k, n] = src[n * ld + k] for k < K, n < N (dst row-major [K, N]), in 32 x 32 blocks.
template <class T>
void transpose(T* dst, const T* src, int64_t ld, int64_t K, int64_t N) {
  constexpr int64_t t = 32;
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(K) * N > (int64_t(1) << 16))
  for (int64_t n0 = 0; n0 < N; n0 += t)
    for (int64_t k0 = 0; k0 < K; k0 += t)
      for (int64_t n = n0; n < std::min(N, n0 + t); ++n)
        for (int64_t k = k0; k < std::min(K, k0 + t); ++k) dst[k * N + n] = src[n * ld + k];
}

// C[rows, vec*L] (+)= alpha * Ap Bp for one micro-panel pair; R rows (1..4), W vectors (1..4).
template <class T, int W>
void kernel_rows(int64_t rows, int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc, T alpha, bool acc) {
  switch (rows) {
    case 4: tile_gemm_block<T, 4, W>(kc, ap, 1, 4, bp, kPanel, c, ldc, alpha, acc); break;
    case 3: tile_gemm_block<T, 3, W>(kc, ap, 1, 4, bp, kPanel, c, ldc, alpha, acc); break;
    case 2: tile_gemm_block<T, 2, W>(kc, ap, 1, 4, bp, kPanel, c, ldc, alpha, acc); break;
    default: tile_gemm_block<T, 1, W>(kc, ap, 1, 4, bp, kPanel, c, ldc, alpha, acc); break;
  }
}

template <class T>
void kernel(int64_t rows, int64_t vecs, int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc, T alpha, bool acc) {
  constexpr int L = simd::lanes<T>();
  for (int64_t v = 0; v < vecs; v += 4) {
    const int64_t w = std::min<int64_t>(4, vecs - v);
    switch (w) {
      case 4: kernel_rows<T, 4>(rows, kc, ap, bp + v * L, c + v * L, ldc, alpha, acc); break;
      case 3: kernel_rows<T, 3>(rows, kc, ap, bp + v * L, c + v * L, ldc, alpha, acc); break;
      case 2: kernel_rows<T, 2>(rows, kc, ap, bp + v * L, c + v * L, ldc, alpha, acc); break;
      default: kernel_rows<T, 1>(rows, kc, ap, bp + v * L, c + v * L, ldc, alpha, acc); break;
    }
  }
}

}  // namespace gemm_detail

template <class T>
void gemm(int64_t M, int64_t N, int64_t K, T alpha, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
          int64_t b_cs, T* c, int64_t ldc, bool accumulate, const GemmBlocking& blk = GemmBlocking()) {
  using namespace gemm_detail;
  constexpr int64_t L = simd::lanes<T>();
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // empty sum
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, T(0));
    return;
  }
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // B read across rows (x W^T: B(k, n) = W[n, k]): transpose it once, so that every task packs
  // contiguous rows (gathering with a stride of K per element is slower than the arithmetic).
  simd::AlignedVector<T> bt;
  if (b_cs != 1) {
    bt.resize(size_t(K * N));
    if (b_rs == 1)
      transpose(bt.data(), b, b_cs, K, N);
    else
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) bt[size_t(k * N + n)] = b[k * b_rs + n * b_cs];
    b = bt.data(), b_rs = N, b_cs = 1;
  }
  // Column blocks: at most nc wide, whole panels, and enough tasks for the threads.
  int64_t nc = std::min(blk.nc, (N + kPanel - 1) / kPanel * kPanel);
  const int64_t mblocks = (M + blk.mc - 1) / blk.mc;
  while (nc > kPanel && mblocks * ((N + nc - 1) / nc) < 2 * threads) nc -= kPanel;
  const int64_t nblocks = (N + nc - 1) / nc;
  const int64_t ntask = mblocks * nblocks;
  const int64_t kc_max = std::min(blk.kc, K);

#pragma omp parallel num_threads(threads) if (threads > 1 && ntask > 1)
  {
    simd::AlignedVector<T> bp(size_t(kc_max * ((nc + kPanel - 1) / kPanel * kPanel)));
    simd::AlignedVector<T> ap(size_t(kc_max * ((blk.mc + 3) / 4 * 4)));
    simd::AlignedVector<T> tail(size_t(4 * kPanel));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < ntask; ++task) {
      const int64_t i0 = (task % mblocks) * blk.mc, n0 = (task / mblocks) * nc;
      const int64_t mc = std::min(blk.mc, M - i0), ncur = std::min(nc, N - n0);
      for (int64_t k0 = 0; k0 < K; k0 += kc_max) {
        const int64_t kc = std::min(kc_max, K - k0);
        const bool acc = accumulate || k0 > 0;
        pack_b(bp.data(), b, b_rs, b_cs, k0, kc, n0, ncur);
        pack_a(ap.data(), a, a_rs, a_cs, i0, mc, k0, kc);
        for (int64_t p = 0; p < ncur; p += kPanel) {
          const int64_t w = std::min(kPanel, ncur - p);
          const int64_t full_vecs = w / L, rest = w - full_vecs * L;
          const T* bpan = bp.data() + p * kc;
          for (int64_t q = 0; q < mc; q += 4) {
            const int64_t rows = std::min<int64_t>(4, mc - q);
            T* cblk = c + (i0 + q) * ldc + n0 + p;
            if (full_vecs > 0) kernel(rows, full_vecs, kc, ap.data() + q * kc, bpan, cblk, ldc, alpha, acc);
            if (rest > 0) {  // a partial vector: compute a whole one into `tail`, keep its valid part
              const int64_t c0 = full_vecs * L;
              kernel(rows, 1, kc, ap.data() + q * kc, bpan + c0, tail.data(), kPanel, alpha, false);
              for (int64_t r = 0; r < rows; ++r)
                for (int64_t e = 0; e < rest; ++e) {
                  T& dst = cblk[r * ldc + c0 + e];
                  dst = acc ? dst + tail[size_t(r * kPanel + e)] : tail[size_t(r * kPanel + e)];
                }
            }
          }
        }
      }
    }
  }
}

}  // namespace lct::cpu
