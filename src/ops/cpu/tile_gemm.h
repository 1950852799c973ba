// The small GEMM of the attention tiles: C[m, n] (+)= alpha * sum_j A(i, j) B[j, n], with A read
// through two strides (A(i, j) = A[i * sa_i + j * sa_j], so A or A^T of a row-major tile) and B
// rows contiguous (stride ldb). Register-blocked: R rows of C x W vectors of n are held in
// registers while j runs; each step loads W vectors of B and broadcasts R elements of A.
// Tiles of 64 x 64 are too small for Eigen's GEMM to reach its peak (packing both operands per
// call, 48-row panels); this kernel needs no packing beyond what the caller lays out.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/cpu/simd.h"

namespace lct::cpu {

template <class T, int R, int W>
inline void tile_gemm_block(int64_t k, const T* A, int64_t sa_i, int64_t sa_j, const T* B, int64_t ldb, T* C,
                            int64_t ldc, T alpha, bool accumulate) {
  using V = simd::Vec<T>;
  constexpr int L = simd::lanes<T>();
  V acc[R][W];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) {
      acc[r][w] = V{};
      // C may be far away (e.g. dQ rows of the whole sequence): have it in cache by the end.
      if (accumulate) __builtin_prefetch(C + r * ldc + w * L, 1, 3);
    }
  for (int64_t j = 0; j < k; ++j) {
    V b[W];
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) {
      b[w] = simd::load(B + j * ldb + w * L);
      // Keep b in a register: folded into every FMA as a memory operand, B would be loaded R
      // times per step and the loads, not the FMAs, would set the pace.
      __asm__("" : "+v"(b[w]));
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const T a = A[r * sa_i + j * sa_j];
#pragma GCC unroll 4
      for (int w = 0; w < W; ++w) acc[r][w] += a * b[w];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) {
      T* c = C + r * ldc + w * L;
      simd::store(c, accumulate ? simd::load(c) + alpha * acc[r][w] : alpha * acc[r][w]);
    }
}

template <class T, int W>
inline void tile_gemm_rows(int64_t m, int64_t k, const T* A, int64_t sa_i, int64_t sa_j, const T* B, int64_t ldb,
                           T* C, int64_t ldc, T alpha, bool accumulate) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4)
    tile_gemm_block<T, 4, W>(k, A + i * sa_i, sa_i, sa_j, B, ldb, C + i * ldc, ldc, alpha, accumulate);
  switch (m - i) {
    case 3: tile_gemm_block<T, 3, W>(k, A + i * sa_i, sa_i, sa_j, B, ldb, C + i * ldc, ldc, alpha, accumulate); break;
    case 2: tile_gemm_block<T, 2, W>(k, A + i * sa_i, sa_i, sa_j, B, ldb, C + i * ldc, ldc, alpha, accumulate); break;
    case 1: tile_gemm_block<T, 1, W>(k, A + i * sa_i, sa_i, sa_j, B, ldb, C + i * ldc, ldc, alpha, accumulate); break;
    default: break;
  }
}

// C[m, n] = alpha * A B (accumulate: C += alpha * A B). Any m, n, k; columns past the last full
// vector are done in scalar code.
template <class T>
void tile_gemm(int64_t m, int64_t n, int64_t k, const T* A, int64_t sa_i, int64_t sa_j, const T* B, int64_t ldb,
               T* C, int64_t ldc, T alpha, bool accumulate) {
  constexpr int L = simd::lanes<T>();
  int64_t c0 = 0;
  for (; c0 + 4 * L <= n; c0 += 4 * L)
    tile_gemm_rows<T, 4>(m, k, A, sa_i, sa_j, B + c0, ldb, C + c0, ldc, alpha, accumulate);
  switch ((n - c0) / L) {
    case 3: tile_gemm_rows<T, 3>(m, k, A, sa_i, sa_j, B + c0, ldb, C + c0, ldc, alpha, accumulate); break;
    case 2: tile_gemm_rows<T, 2>(m, k, A, sa_i, sa_j, B + c0, ldb, C + c0, ldc, alpha, accumulate); break;
    case 1: tile_gemm_rows<T, 1>(m, k, A, sa_i, sa_j, B + c0, ldb, C + c0, ldc, alpha, accumulate); break;
    default: break;
  }
  c0 += (n - c0) / L * L;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = c0; c < n; ++c) {
      T s = 0;
      for (int64_t j = 0; j < k; ++j) s += A[i * sa_i + j * sa_j] * B[j * ldb + c];
      C[i * ldc + c] = accumulate ? C[i * ldc + c] + alpha * s : alpha * s;
    }
}

}  // namespace lct::cpu
