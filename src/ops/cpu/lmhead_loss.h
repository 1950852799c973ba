// Fused LM head + cross-entropy, tiled over tokens AND vocabulary so that only one [Nc, Vc] logits
// tile per thread exists (never [N, V]). Vocabulary-parallel: each rank holds rows
// [vocab_begin, vocab_begin + V) of the head; per-token statistics (max, sum of exps, target logit)
// are combined across ranks before the backward.
//
// Why 2-D tiles: with token chunks over the whole vocabulary, dW (V x C, 64 MB at V = 32000,
// C = 512) is read and written once per chunk and its GEMM has only chunk rows of depth. Here a
// token chunk is processed against the vocabulary tiles in parallel (one thread per tile, each
// with private row statistics / a private dX partial, merged after), so every GEMM has depth >= ~512
// and dW is touched N / Nc times.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <omp.h>

#include "ops/cpu/eigen_util.h"
#include "ops/cpu/gemm.h"

namespace lct::cpu {

struct LmHeadTiles {
  int64_t Nc, Vc;  // tokens and vocabulary rows per tile
};

// Token chunks of up to 1024 rows; vocabulary tiles of up to 1024 rows, at least one per thread.
inline LmHeadTiles lmhead_tiles(int64_t N, int64_t V, int threads) {
  LmHeadTiles t;
  t.Nc = std::max<int64_t>(1, std::min<int64_t>(N, 1024));
  const int64_t per_thread = (V + threads - 1) / std::max(threads, 1);
  t.Vc = std::max<int64_t>(1, std::min<int64_t>(1024, per_thread));
  return t;
}

template <class T>
void lmhead_loss_forward(T* stats, const T* x, const T* w, const int32_t* targets, int64_t N, int64_t C,
                         int64_t V, int64_t vocab_begin, LmHeadTiles tiles) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const int64_t Nc = tiles.Nc, Vc = tiles.Vc, nv = (V + Vc - 1) / Vc;
  const int nt = omp_get_max_threads();
  // Per-thread running statistics of the chunk's rows: max, sum of exps, target logit.
  std::vector<T> part(size_t(nt) * size_t(Nc) * 3);
  for (int64_t n0 = 0; n0 < N; n0 += Nc) {
    const int64_t nc = std::min(Nc, N - n0);
    for (int t = 0; t < nt; ++t)
      for (int64_t r = 0; r < nc; ++r) {
        T* p = part.data() + (size_t(t) * Nc + r) * 3;
        p[0] = neg_inf, p[1] = 0, p[2] = 0;
      }
#pragma omp parallel
    {
      RowMat<T> S(nc, Vc);
      T* mine = part.data() + size_t(omp_get_thread_num()) * Nc * 3;
#pragma omp for schedule(dynamic, 1)
      for (int64_t j = 0; j < nv; ++j) {
        const int64_t v0 = j * Vc, vc = std::min(Vc, V - v0);
        auto St = S.leftCols(vc);
        gemm<T>(nc, vc, C, T(1), x + n0 * C, C, 1, w + v0 * C, 1, C, S.data(), Vc, false);
        for (int64_t r = 0; r < nc; ++r) {
          T* p = mine + r * 3;
          auto row = St.row(r);
          const T mx = std::max(p[0], row.maxCoeff());
          p[1] = p[1] * std::exp(p[0] - mx) + (row.array() - mx).exp().sum();  // exp(-inf) = 0 at the start
          p[0] = mx;
          const int64_t t = int64_t(targets[n0 + r]) - vocab_begin - v0;
          if (targets[n0 + r] >= 0 && t >= 0 && t < vc) p[2] = row(t);
        }
      }
    }
    for (int64_t r = 0; r < nc; ++r) {
      T mx = neg_inf, se = 0, tl = 0;
      for (int t = 0; t < nt; ++t) mx = std::max(mx, part[(size_t(t) * Nc + r) * 3]);
      for (int t = 0; t < nt; ++t) {
        const T* p = part.data() + (size_t(t) * Nc + r) * 3;
        if (p[0] != neg_inf) se += p[1] * std::exp(p[0] - mx);
        tl += p[2];
      }
      T* st = stats + (n0 + r) * 3;
      st[0] = mx, st[1] = se, st[2] = tl;
    }
  }
}

template <class T>
void lmhead_loss_forward(T* stats, const T* x, const T* w, const int32_t* targets, int64_t N, int64_t C,
                         int64_t V, int64_t vocab_begin) {
  lmhead_loss_forward(stats, x, w, targets, N, C, V, vocab_begin, lmhead_tiles(N, V, omp_get_max_threads()));
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

// Per token chunk: every thread takes vocabulary tiles, recomputes their logits, forms
// dlogits = (softmax - onehot) * scale in place, adds dlogits W_v into its private dX partial and
// dlogits^T X_c into dW_v (its own rows). The partials are then summed into dx.
template <class T>
void lmhead_loss_backward(T* dx, T* dw, const T* x, const T* w, const int32_t* targets, const T* lse, double scale,
                          int64_t N, int64_t C, int64_t V, int64_t vocab_begin, LmHeadTiles tiles) {
  const int64_t Nc = tiles.Nc, Vc = tiles.Vc, nv = (V + Vc - 1) / Vc;
  const int nt = omp_get_max_threads();
  std::vector<RowMat<T>> dxp(static_cast<size_t>(nt));
  const T sc = T(scale);
  for (int64_t n0 = 0; n0 < N; n0 += Nc) {
    const int64_t nc = std::min(Nc, N - n0);
    std::vector<char> used(size_t(nt), 0);
#pragma omp parallel
    {
      const int me = omp_get_thread_num();
      RowMat<T> D(nc, Vc);
      RowMat<T>& dXp = dxp[size_t(me)];
      dXp.setZero(nc, C);
#pragma omp for schedule(dynamic, 1)
      for (int64_t j = 0; j < nv; ++j) {
        const int64_t v0 = j * Vc, vc = std::min(Vc, V - v0);
        auto Dt = D.leftCols(vc);
        gemm<T>(nc, vc, C, T(1), x + n0 * C, C, 1, w + v0 * C, 1, C, D.data(), Vc, false);
        for (int64_t r = 0; r < nc; ++r) {
          auto row = Dt.row(r);
          const int32_t tg = targets[n0 + r];
          if (tg < 0) {
            row.setZero();
            continue;
          }
          row = (row.array() - lse[n0 + r]).exp() * sc;
          const int64_t t = int64_t(tg) - vocab_begin - v0;
          if (t >= 0 && t < vc) row(t) -= sc;
        }
        gemm<T>(nc, C, vc, T(1), D.data(), Vc, 1, w + v0 * C, C, 1, dXp.data(), C, true);    // dX += D W_v
        gemm<T>(vc, C, nc, T(1), D.data(), 1, Vc, x + n0 * C, C, 1, dw + v0 * C, C, true);  // dW_v += D^T X_c
        used[size_t(me)] = 1;
      }
#pragma omp barrier
      // dx rows of this chunk = the sum of the threads' partials (rows split over threads).
#pragma omp for schedule(static)
      for (int64_t r = 0; r < nc; ++r) {
        T* d = dx + (n0 + r) * C;
        for (int64_t c = 0; c < C; ++c) d[c] = T(0);
        for (int t = 0; t < nt; ++t) {
          if (!used[size_t(t)]) continue;
          const T* p = dxp[size_t(t)].data() + r * C;
          for (int64_t c = 0; c < C; ++c) d[c] += p[c];
        }
      }
    }
  }
}

template <class T>
void lmhead_loss_backward(T* dx, T* dw, const T* x, const T* w, const int32_t* targets, const T* lse, double scale,
                          int64_t N, int64_t C, int64_t V, int64_t vocab_begin) {
  lmhead_loss_backward(dx, dw, x, w, targets, lse, scale, N, C, V, vocab_begin,
                       lmhead_tiles(N, V, omp_get_max_threads()));
}

}  // namespace lct::cpu
