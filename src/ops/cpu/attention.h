// Blockwise causal attention with an online softmax (flash-attention style) on the CPU.
// One call: a query block [B, Tq, Hq, D] against one key/value block [B, Tk, Hkv, D], causal by
// explicit global positions. Only tile-sized score buffers exist (blk x blk per thread): no Tq x Tk
// buffer at any length. GQA by indexing: query head h reads kv head h / (Hq / Hkv).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <omp.h>

#include "ops/cpu/eigen_util.h"

namespace lct::cpu {

struct AttnShape {
  int64_t B, Tq, Tk, Hq, Hkv, D;
  int64_t group() const { return Hq / Hkv; }
};

// Per-tile position bounds, so fully masked tiles are skipped and fully visible ones need no mask.
struct TileBounds {
  std::vector<int32_t> lo, hi;
  TileBounds(const int32_t* pos, int64_t n, int64_t blk) {
    for (int64_t s = 0; s < n; s += blk) {
      int64_t e = std::min(n, s + blk);
      int32_t a = pos[s], b = pos[s];
      for (int64_t i = s; i < e; ++i) a = std::min(a, pos[i]), b = std::max(b, pos[i]);
      lo.push_back(a);
      hi.push_back(b);
    }
  }
  int64_t count() const { return int64_t(lo.size()); }
};

template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const int32_t* qpos,
                       const int32_t* kpos, const AttnShape& s, int64_t blk) {
  using Mat = RowMat<T>;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const T scale = T(1) / std::sqrt(T(s.D));
  const int64_t g = s.group();
  TileBounds qb(qpos, s.Tq, blk), kb(kpos, s.Tk, blk);
  const int64_t nq = qb.count(), nk = kb.count();
  const int64_t ntask = s.B * s.Hq * nq;

#pragma omp parallel
  {
    Mat Q(blk, s.D), S(blk, blk), O(blk, s.D);
    std::vector<T> m(blk), l(blk);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < ntask; ++task) {
      const int64_t i = task % nq, h = (task / nq) % s.Hq, b = task / (nq * s.Hq);
      const int64_t hk = h / g;
      const int64_t q0 = i * blk, bq = std::min(blk, s.Tq - q0);
      auto Qsrc = strided(q + ((b * s.Tq + q0) * s.Hq + h) * s.D, bq, s.D, s.Hq * s.D);
      Q.topRows(bq) = Qsrc * scale;
      O.topRows(bq).setZero();
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), T(0));

      for (int64_t j = 0; j < nk; ++j) {
        if (kb.lo[j] > qb.hi[i]) continue;  // every key of the tile is in every query's future
        const bool full = kb.hi[j] <= qb.lo[i];
        const int64_t k0 = j * blk, bk = std::min(blk, s.Tk - k0);
        auto K = strided(k + ((b * s.Tk + k0) * s.Hkv + hk) * s.D, bk, s.D, s.Hkv * s.D);
        auto V = strided(v + ((b * s.Tk + k0) * s.Hkv + hk) * s.D, bk, s.D, s.Hkv * s.D);
        auto St = S.topLeftCorner(bq, bk);
        St.noalias() = Q.topRows(bq) * K.transpose();
        for (int64_t r = 0; r < bq; ++r) {
          auto row = St.row(r);
          if (!full) {
            const int32_t qp = qpos[q0 + r];
            for (int64_t c = 0; c < bk; ++c)
              if (kpos[k0 + c] > qp) row(c) = neg_inf;
          }
          const T mx = std::max(m[r], row.maxCoeff());
          if (mx == neg_inf) {  // nothing visible yet for this row
            row.setZero();
            continue;
          }
          const T alpha = std::exp(m[r] - mx);  // 0 when m[r] was -inf
          row = (row.array() - mx).exp();
          l[r] = l[r] * alpha + row.sum();
          m[r] = mx;
          if (alpha != T(1)) O.row(r) *= alpha;
        }
        O.topRows(bq).noalias() += St * V;
      }

      auto Odst = strided(out + ((b * s.Tq + q0) * s.Hq + h) * s.D, bq, s.D, s.Hq * s.D);
      T* lse_row = lse + (b * s.Hq + h) * s.Tq + q0;
      for (int64_t r = 0; r < bq; ++r) {
        if (l[r] == T(0)) {
          Odst.row(r).setZero();
          lse_row[r] = neg_inf;
        } else {
          Odst.row(r) = O.row(r) / l[r];
          lse_row[r] = m[r] + std::log(l[r]);
        }
      }
    }
  }
}

// Merge of partial results: out/lse [B, Tq, Hq, D] / [B, Hq, Tq].
template <class T>
void attention_merge(T* out, T* lse, const T* out_b, const T* lse_b, int64_t B, int64_t Tq, int64_t Hq, int64_t D) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tq; ++t)
      for (int64_t h = 0; h < Hq; ++h) {
        T& L = lse[(b * Hq + h) * Tq + t];
        const T Lb = lse_b[(b * Hq + h) * Tq + t];
        T* o = out + ((b * Tq + t) * Hq + h) * D;
        const T* ob = out_b + ((b * Tq + t) * Hq + h) * D;
        if (Lb == neg_inf) continue;
        if (L == neg_inf) {
          for (int64_t d = 0; d < D; ++d) o[d] = ob[d];
          L = Lb;
          continue;
        }
        const T mx = std::max(L, Lb);
        const T nl = mx + std::log(std::exp(L - mx) + std::exp(Lb - mx));
        const T wa = std::exp(L - nl), wb = std::exp(Lb - nl);
        for (int64_t d = 0; d < D; ++d) o[d] = wa * o[d] + wb * ob[d];
        L = nl;
      }
}

// Backward for one K/V block given the final out and lse of the query rows:
//   P = exp(S - lse); dV += P^T dO; dS = P * (dO V^T - rowsum(dO * O)); dQ += dS K * scale;
//   dK += dS^T Q * scale.
// Work is split over (b, kv head) so each task owns its dK/dV rows and the dQ rows of its query
// heads; when there are fewer such tasks than threads, the key tiles are split into segments
// with private dQ buffers summed at the end.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                        const int32_t* qpos, const int32_t* kpos, const T* out, const T* lse,
                        const AttnShape& s, int64_t blk) {
  using Mat = RowMat<T>;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const T scale = T(1) / std::sqrt(T(s.D));
  const int64_t g = s.group();
  TileBounds qb(qpos, s.Tq, blk), kb(kpos, s.Tk, blk);
  const int64_t nq = qb.count(), nk = kb.count();
  const int64_t nhead_tasks = s.B * s.Hkv;
  const int nthreads = omp_get_max_threads();
  const int64_t nseg = std::min<int64_t>(nk, std::max<int64_t>(1, (nthreads + nhead_tasks - 1) / nhead_tasks));
  const int64_t ntask = nhead_tasks * nseg;
  // Private dQ for segments > 0 (segment 0 writes dq directly).
  std::vector<T> dq_priv(nseg > 1 ? size_t(ntask) * s.Tq * g * s.D : 0, T(0));

  // Delta = rowsum(dO * O), [B, Hq, Tq].
  std::vector<T> delta(size_t(s.B * s.Hq * s.Tq));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.Tq; ++t)
      for (int64_t h = 0; h < s.Hq; ++h) {
        const T* o = out + ((b * s.Tq + t) * s.Hq + h) * s.D;
        const T* d = dout + ((b * s.Tq + t) * s.Hq + h) * s.D;
        T acc = 0;
        for (int64_t e = 0; e < s.D; ++e) acc += o[e] * d[e];
        delta[(b * s.Hq + h) * s.Tq + t] = acc;
      }

#pragma omp parallel
  {
    Mat P(blk, blk), dP(blk, blk), dK(blk, s.D), dV(blk, s.D), Qs(blk, s.D);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < ntask; ++task) {
      const int64_t seg = task % nseg, ht = task / nseg;
      const int64_t hk = ht % s.Hkv, b = ht / s.Hkv;
      const int64_t j_begin = nk * seg / nseg, j_end = nk * (seg + 1) / nseg;
      for (int64_t j = j_begin; j < j_end; ++j) {
        const int64_t k0 = j * blk, bk = std::min(blk, s.Tk - k0);
        auto K = strided(k + ((b * s.Tk + k0) * s.Hkv + hk) * s.D, bk, s.D, s.Hkv * s.D);
        auto V = strided(v + ((b * s.Tk + k0) * s.Hkv + hk) * s.D, bk, s.D, s.Hkv * s.D);
        dK.topRows(bk).setZero();
        dV.topRows(bk).setZero();
        bool touched = false;
        for (int64_t hg = 0; hg < g; ++hg) {
          const int64_t h = hk * g + hg;
          for (int64_t i = 0; i < nq; ++i) {
            if (kb.lo[j] > qb.hi[i]) continue;
            const bool full = kb.hi[j] <= qb.lo[i];
            const int64_t q0 = i * blk, bq = std::min(blk, s.Tq - q0);
            auto Q = strided(q + ((b * s.Tq + q0) * s.Hq + h) * s.D, bq, s.D, s.Hq * s.D);
            auto dO = strided(dout + ((b * s.Tq + q0) * s.Hq + h) * s.D, bq, s.D, s.Hq * s.D);
            const T* L = lse + (b * s.Hq + h) * s.Tq + q0;
            const T* Dl = delta.data() + (b * s.Hq + h) * s.Tq + q0;
            Qs.topRows(bq) = Q * scale;
            auto Pt = P.topLeftCorner(bq, bk);
            Pt.noalias() = Qs.topRows(bq) * K.transpose();
            for (int64_t r = 0; r < bq; ++r) {
              auto row = Pt.row(r);
              if (L[r] == neg_inf) {
                row.setZero();
                continue;
              }
              if (!full) {
                const int32_t qp = qpos[q0 + r];
                for (int64_t c = 0; c < bk; ++c)
                  if (kpos[k0 + c] > qp) row(c) = neg_inf;
              }
              row = (row.array() - L[r]).exp();
            }
            dV.topRows(bk).noalias() += Pt.transpose() * dO;
            auto dPt = dP.topLeftCorner(bq, bk);
            dPt.noalias() = dO * V.transpose();
            for (int64_t r = 0; r < bq; ++r)
              dPt.row(r) = (Pt.row(r).array() * (dPt.row(r).array() - Dl[r])).matrix();
            // dPt now holds dS. dQ rows of this head:
            if (seg == 0) {
              auto dQ = strided(dq + ((b * s.Tq + q0) * s.Hq + h) * s.D, bq, s.D, s.Hq * s.D);
              dQ.noalias() += (dPt * K) * scale;
            } else {
              T* base = dq_priv.data() + (size_t(task) * s.Tq * g + size_t(q0) * g + hg) * s.D;
              auto dQ = strided(base, bq, s.D, g * s.D);
              dQ.noalias() += (dPt * K) * scale;
            }
            dK.topRows(bk).noalias() += dPt.transpose() * Qs.topRows(bq);
            touched = true;
          }
        }
        if (!touched) continue;
        auto dKd = strided(dk + ((b * s.Tk + k0) * s.Hkv + hk) * s.D, bk, s.D, s.Hkv * s.D);
        auto dVd = strided(dv + ((b * s.Tk + k0) * s.Hkv + hk) * s.D, bk, s.D, s.Hkv * s.D);
        dKd += dK.topRows(bk);
        dVd += dV.topRows(bk);
      }
    }
  }

  if (nseg > 1) {
    // Sum the private dQ of segments 1.. into dq.
#pragma omp parallel for schedule(static)
    for (int64_t ht = 0; ht < nhead_tasks; ++ht) {
      const int64_t hk = ht % s.Hkv, b = ht / s.Hkv;
      for (int64_t seg = 1; seg < nseg; ++seg) {
        const T* src = dq_priv.data() + size_t(ht * nseg + seg) * s.Tq * g * s.D;
        for (int64_t t = 0; t < s.Tq; ++t)
          for (int64_t hg = 0; hg < g; ++hg) {
            T* d = dq + ((b * s.Tq + t) * s.Hq + hk * g + hg) * s.D;
            const T* p = src + (size_t(t) * g + hg) * s.D;
            for (int64_t e = 0; e < s.D; ++e) d[e] += p[e];
          }
      }
    }
  }
}

}  // namespace lct::cpu
