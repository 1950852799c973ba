// Linear layers as Eigen GEMMs on row-major maps: y = x W^T (torch.nn.Linear layout).
#pragma once

#include "ops/cpu/eigen_util.h"

namespace lct::cpu {

template <class T>
void matmul_forward(T* y, const T* x, const T* w, int64_t N, int64_t K, int64_t M, bool accumulate) {
  MatMap<T> Y(y, N, M);
  ConstMatMap<T> X(x, N, K), W(w, M, K);
  if (accumulate)
    Y.noalias() += X * W.transpose();
  else
    Y.noalias() = X * W.transpose();
}

// dx = dy W (or +=); dw += dy^T x. dx may be null.
template <class T>
void matmul_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, int64_t N, int64_t K, int64_t M,
                     bool accumulate_dx) {
  ConstMatMap<T> DY(dy, N, M), X(x, N, K), W(w, M, K);
  if (dx) {
    MatMap<T> DX(dx, N, K);
    if (accumulate_dx)
      DX.noalias() += DY * W;
    else
      DX.noalias() = DY * W;
  }
  if (dw) {
    MatMap<T> DW(dw, M, K);
    DW.noalias() += DY.transpose() * X;
  }
}

}  // namespace lct::cpu
