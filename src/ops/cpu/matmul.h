// Linear layers (torch.nn.Linear layout: y = x W^T, W [out, in]) on the blocked GEMM of gemm.h.
#pragma once

#include <cstdint>

#include "ops/cpu/gemm.h"

namespace lct::cpu {

template <class T>
void matmul_forward(T* y, const T* x, const T* w, int64_t N, int64_t K, int64_t M, bool accumulate) {
  gemm<T>(N, M, K, T(1), x, K, 1, w, 1, K, y, M, accumulate);
}

// dx = dy W (or +=); dw += dy^T x. dx or dw may be null.
template <class T>
void matmul_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, int64_t N, int64_t K, int64_t M,
                     bool accumulate_dx) {
  if (dx) gemm<T>(N, K, M, T(1), dy, M, 1, w, K, 1, dx, K, accumulate_dx);
  if (dw) gemm<T>(M, K, N, T(1), dy, 1, M, x, K, 1, dw, K, true);
}

}  // namespace lct::cpu
