// Fused LM head + cross-entropy, chunked over tokens so that only a [chunk, V] logits tile exists.
// Vocabulary-parallel: each rank holds rows [vocab_begin, vocab_begin + V) of the head; per-token
// statistics (max, sum of exps, target logit) are combined across ranks before the backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/cpu/eigen_util.h"

namespace lct::cpu {

// Rows per chunk so that a chunk of logits holds about 4M elements.
inline int64_t lmhead_chunk_rows(int64_t N, int64_t V) {
  return std::max<int64_t>(1, std::min<int64_t>(N, (int64_t(1) << 22) / std::max<int64_t>(V, 1)));
}

template <class T>
void lmhead_loss_forward(T* stats, const T* x, const T* w, const int32_t* targets, int64_t N, int64_t C,
                         int64_t V, int64_t vocab_begin) {
  const int64_t chunk = lmhead_chunk_rows(N, V);
  RowMat<T> logits(chunk, V);
  ConstMatMap<T> W(w, V, C);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t nc = std::min(chunk, N - n0);
    ConstMatMap<T> X(x + n0 * C, nc, C);
    logits.topRows(nc).noalias() = X * W.transpose();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nc; ++r) {
      auto row = logits.row(r);
      const T mx = row.maxCoeff();
      const T se = (row.array() - mx).exp().sum();
      const int64_t t = int64_t(targets[n0 + r]) - vocab_begin;
      T* st = stats + (n0 + r) * 3;
      st[0] = mx;
      st[1] = se;
      st[2] = (targets[n0 + r] >= 0 && t >= 0 && t < V) ? row(t) : T(0);
    }
  }
}

template <class T>
double lmhead_loss_combine(T* lse, const T* stats_all, const int32_t* targets, int64_t P, int64_t N) {
  double loss = 0;
#pragma omp parallel for reduction(+ : loss) schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t p = 0; p < P; ++p) mx = std::max(mx, stats_all[(p * N + n) * 3]);
    T se = 0, tl = 0;
    for (int64_t p = 0; p < P; ++p) {
      const T* st = stats_all + (p * N + n) * 3;
      se += st[1] * std::exp(st[0] - mx);
      tl += st[2];
    }
    lse[n] = mx + std::log(se);
    if (targets[n] >= 0) loss += double(lse[n]) - double(tl);
  }
  return loss;
}

template <class T>
void lmhead_loss_backward(T* dx, T* dw, const T* x, const T* w, const int32_t* targets, const T* lse, double scale,
                          int64_t N, int64_t C, int64_t V, int64_t vocab_begin) {
  const int64_t chunk = lmhead_chunk_rows(N, V);
  RowMat<T> dlogits(chunk, V);
  ConstMatMap<T> W(w, V, C);
  MatMap<T> DW(dw, V, C);
  const T sc = T(scale);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t nc = std::min(chunk, N - n0);
    ConstMatMap<T> X(x + n0 * C, nc, C);
    auto D = dlogits.topRows(nc);
    D.noalias() = X * W.transpose();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nc; ++r) {
      auto row = D.row(r);
      const int32_t tg = targets[n0 + r];
      if (tg < 0) {
        row.setZero();
        continue;
      }
      row = (row.array() - lse[n0 + r]).exp() * sc;
      const int64_t t = int64_t(tg) - vocab_begin;
      if (t >= 0 && t < V) row(t) -= sc;
    }
    MatMap<T>(dx + n0 * C, nc, C).noalias() = D * W;
    DW.noalias() += D.transpose() * X;
  }
}

}  // namespace lct::cpu
