// Blockwise causal attention with an online softmax (flash-attention style) on the CPU.
// One call: a query block [B, Tq, Hq, D] against one key/value block [B, Tk, Hkv, D], masked by
// explicit positions (AttnPos: causal, and by document when each query's document start is given). Only tile-sized buffers exist (blk x blk scores per thread, plus one
// transposed copy of K): no Tq x Tk buffer at any length. GQA by indexing: query head h reads kv
// head h / (Hq / Hkv).
//
// Every product is a tile_gemm (register-blocked, broadcast A / vector B rows), so the operands are
// laid out with the vector dimension contiguous: scores S = Qs K^T read K^T (packed per key tile,
// padded to whole vectors, zeros in the padding), O += P V and dQ += dS K read rows of V and K as
// they are, dV += P^T dO and dK += dS^T Qs read P and dS transposed through strides.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <omp.h>

#include "ops/cpu/simd.h"
#include "ops/cpu/tile_gemm.h"

namespace lct::cpu {

struct AttnShape {
  int64_t B, Tq, Tk, Hq, Hkv, D;
  int64_t group() const { return Hq / Hkv; }
};

// The mask of one call (ops.h AttnMask) as host pointers: key j is visible to query i of row b iff
// qstart[b, i] <= kpos[b, j] <= qpos[b, i]; qstart null = plain causal. A stride of 0 means one
// row of positions shared by every batch row.
struct AttnPos {
  const int32_t *qpos = nullptr, *kpos = nullptr, *qstart = nullptr;
  int64_t q_stride = 0, k_stride = 0;
  const int32_t* q(int64_t b) const { return qpos + b * q_stride; }
  const int32_t* k(int64_t b) const { return kpos + b * k_stride; }
  const int32_t* start(int64_t b) const { return qstart ? qstart + b * q_stride : nullptr; }
};

// Per-tile position bounds, so fully masked tiles are skipped and fully visible ones need no mask:
// [lo, hi] of the positions and [slo, shi] of the document starts (INT_MIN without documents).
struct TileBounds {
  std::vector<int32_t> lo, hi, slo, shi;
  TileBounds(const int32_t* pos, int64_t n, int64_t blk, const int32_t* start = nullptr) {
    for (int64_t s = 0; s < n; s += blk) {
      int64_t e = std::min(n, s + blk);
      int32_t a = pos[s], b = pos[s];
      int32_t sa = std::numeric_limits<int32_t>::min(), sb = sa;
      if (start) sa = sb = start[s];
      for (int64_t i = s; i < e; ++i) {
        a = std::min(a, pos[i]), b = std::max(b, pos[i]);
        if (start) sa = std::min(sa, start[i]), sb = std::max(sb, start[i]);
      }
      lo.push_back(a);
      hi.push_back(b);
      slo.push_back(sa);
      shi.push_back(sb);
    }
  }
  int64_t count() const { return int64_t(lo.size()); }
};

// Query-tile bounds against key-tile bounds: no pair visible (skip), or every pair visible (no mask).
inline bool tile_hidden(const TileBounds& q, int64_t i, const TileBounds& k, int64_t j) {
  return k.lo[size_t(j)] > q.hi[size_t(i)] || k.hi[size_t(j)] < q.slo[size_t(i)];
}
inline bool tile_full(const TileBounds& q, int64_t i, const TileBounds& k, int64_t j) {
  return k.hi[size_t(j)] <= q.lo[size_t(i)] && k.lo[size_t(j)] >= q.shi[size_t(i)];
}

// Bounds per batch row (one entry when the rows share their positions).
struct RowBounds {
  std::vector<TileBounds> q, k;
  RowBounds(const AttnPos& p, int64_t B, int64_t Tq, int64_t Tk, int64_t blk) {
    for (int64_t b = 0; b < (p.q_stride ? B : 1); ++b) q.emplace_back(p.q(b), Tq, blk, p.start(b));
    for (int64_t b = 0; b < (p.k_stride ? B : 1); ++b) k.emplace_back(p.k(b), Tk, blk);
  }
  const TileBounds& qb(int64_t b) const { return q[q.size() == 1 ? 0 : size_t(b)]; }
  const TileBounds& kb(int64_t b) const { return k[k.size() == 1 ? 0 : size_t(b)]; }
};

// Key-tile geometry: blk keys per tile, rows of the packed K^T / V^T padded to kp (whole vectors
// of `lanes` elements).
struct KeyTiles {
  int64_t blk, kp, n;
  KeyTiles(int64_t Tk, int64_t blk_, int64_t lanes) : blk(blk_) {
    kp = (blk + lanes - 1) / lanes * lanes;
    n = (Tk + blk - 1) / blk;
  }
};

// dst[d * kp + c] = src row (k0 + c), element d, for c < bk; zero for bk <= c < kp.
template <class T>
void pack_transposed(T* dst, const T* src, int64_t ld, int64_t bk, int64_t kp, int64_t D) {
  for (int64_t d = 0; d < D; ++d) std::fill(dst + d * kp + bk, dst + (d + 1) * kp, T(0));
  for (int64_t c = 0; c < bk; ++c) {
    const T* row = src + c * ld;
    for (int64_t d = 0; d < D; ++d) dst[d * kp + c] = row[d];
  }
}

// Masks a score tile (rows of width kp): -inf where the key is in the query's future, before the
// query's document (qstart, may be null) or is padding.
template <class T>
void mask_tile(T* S, int64_t bq, int64_t bk, int64_t kp, const int32_t* qpos, const int32_t* kpos, bool full,
               const int32_t* qstart = nullptr) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < bq; ++r) {
    T* row = S + r * kp;
    if (!full) {
      const int32_t qp = qpos[r], qs = qstart ? qstart[r] : std::numeric_limits<int32_t>::min();
      for (int64_t c = 0; c < bk; ++c)
        if (kpos[c] > qp || kpos[c] < qs) row[c] = neg_inf;
    }
    for (int64_t c = bk; c < kp; ++c) row[c] = neg_inf;
  }
}

template <class T>
T row_max(const T* row, int64_t n) {
  using V = simd::Vec<T>;
  constexpr int L = simd::lanes<T>();
  V m = simd::splat(-std::numeric_limits<T>::infinity());
  for (int64_t c = 0; c < n; c += L) m = simd::vmax<T>(m, simd::load(row + c));
  return simd::hmax<T>(m);
}

// row = exp(row - shift) in place; returns the sum. n is a multiple of the vector width.
template <class T>
T exp_shift_sum(T* row, int64_t n, T shift) {
  using V = simd::Vec<T>;
  constexpr int L = simd::lanes<T>();
  V s{};
  for (int64_t c = 0; c < n; c += L) {
    const V e = simd::exp(simd::load(row + c) - shift);
    simd::store(row + c, e);
    s += e;
  }
  return simd::hsum<T>(s);
}

// Copies rows [bk, D] of a strided tile into contiguous rows (dst row stride D). Strided head rows
// (1-2 KiB apart) alias in the L1 sets; contiguous copies do not.
template <class T>
void pack_rows(T* dst, const T* src, int64_t ld, int64_t rows, int64_t D, T scale = T(1)) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t d = 0; d < D; ++d) dst[r * D + d] = src[r * ld + d] * scale;
}

// Per (b, kv head, key tile): K^T [D, kp] and V [blk, D], contiguous. Together the size of K and V.
template <class T>
struct PackedKV {
  simd::AlignedVector<T> kt, v;
  int64_t kt_tile, v_tile;
  PackedKV(const T* k, const T* vsrc, const AttnShape& s, const KeyTiles& t)
      : kt(size_t(s.B * s.Hkv * t.n * s.D * t.kp)),
        v(size_t(s.B * s.Hkv * t.n * t.blk * s.D)),
        kt_tile(s.D * t.kp),
        v_tile(t.blk * s.D) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t bh = 0; bh < s.B * s.Hkv; ++bh)
      for (int64_t j = 0; j < t.n; ++j) {
        const int64_t b = bh / s.Hkv, hk = bh % s.Hkv, k0 = j * t.blk, bk = std::min(t.blk, s.Tk - k0);
        const int64_t off = ((b * s.Tk + k0) * s.Hkv + hk) * s.D, ld = s.Hkv * s.D;
        pack_transposed(kt.data() + size_t((bh * t.n + j) * kt_tile), k + off, ld, bk, t.kp, s.D);
        pack_rows(v.data() + size_t((bh * t.n + j) * v_tile), vsrc + off, ld, bk, s.D);
      }
  }
  const T* kt_of(int64_t bh, int64_t j, int64_t n) const { return kt.data() + size_t((bh * n + j) * kt_tile); }
  const T* v_of(int64_t bh, int64_t j, int64_t n) const { return v.data() + size_t((bh * n + j) * v_tile); }
};

template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const AttnPos& pos, const AttnShape& s,
                       int64_t blk) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const T scale = T(1) / std::sqrt(T(s.D));
  const int64_t g = s.group(), D = s.D;
  const RowBounds bounds(pos, s.B, s.Tq, s.Tk, blk);
  const KeyTiles kt(s.Tk, blk, simd::lanes<T>());
  const int64_t nq = (s.Tq + blk - 1) / blk, nk = kt.n, kp = kt.kp;
  const int64_t ntask = s.B * s.Hq * nq;
  const PackedKV<T> kv(k, v, s, kt);

#pragma omp parallel
  {
    const size_t nb = size_t(blk);
    simd::AlignedVector<T> Q(nb * size_t(D)), S(nb * size_t(kp)), O(nb * size_t(D));
    // Row statistics, padded to whole vectors: running max m, sum l, the tile's new max and the
    // rescale factor exp(m - mnew) of the rows already accumulated.
    constexpr int64_t L = simd::lanes<T>();
    const size_t nbv = (nb + L - 1) / L * L;
    simd::AlignedVector<T> m(nbv), l(nbv), mnew(nbv), alpha(nbv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < ntask; ++task) {
      const int64_t i = task % nq, h = (task / nq) % s.Hq, b = task / (nq * s.Hq);
      const int64_t hk = h / g;
      const int64_t q0 = i * blk, bq = std::min(blk, s.Tq - q0);
      const TileBounds &qb = bounds.qb(b), &kb = bounds.kb(b);
      const int32_t *qpos = pos.q(b), *kpos = pos.k(b), *qstart = pos.start(b);
      pack_rows(Q.data(), q + ((b * s.Tq + q0) * s.Hq + h) * D, s.Hq * D, bq, D, scale);
      std::fill(O.begin(), O.end(), T(0));
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(mnew.begin(), mnew.end(), neg_inf);
      std::fill(l.begin(), l.end(), T(0));

      for (int64_t j = 0; j < nk; ++j) {
        if (tile_hidden(qb, i, kb, j)) continue;  // no query of the tile sees a key of this tile
        const bool full = tile_full(qb, i, kb, j);
        const int64_t k0 = j * blk, bk = std::min(blk, s.Tk - k0);
        tile_gemm(bq, kp, D, Q.data(), D, 1, kv.kt_of(b * s.Hkv + hk, j, nk), kp, S.data(), kp, T(1), false);
        if (!full || bk < kp) mask_tile(S.data(), bq, bk, kp, qpos + q0, kpos + k0, full, qstart ? qstart + q0 : nullptr);
        for (int64_t r = 0; r < bq; ++r) mnew[size_t(r)] = std::max(m[size_t(r)], row_max(S.data() + r * kp, kp));
        for (size_t r = 0; r < nbv; r += L) {  // alpha = exp(m - mnew), 0 when m = -inf, 1 when both are
          const simd::Vec<T> mo = simd::load(m.data() + r), mn = simd::load(mnew.data() + r);
          simd::store(alpha.data() + r, simd::exp(mn == neg_inf ? simd::Vec<T>{} : mo - mn));
        }
        for (int64_t r = 0; r < bq; ++r) {
          T* row = S.data() + r * kp;
          const T mx = mnew[size_t(r)], a = alpha[size_t(r)];
          if (mx == neg_inf) {  // nothing visible yet for this row
            std::fill(row, row + kp, T(0));
            continue;
          }
          l[size_t(r)] = l[size_t(r)] * a + exp_shift_sum(row, kp, mx);
          m[size_t(r)] = mx;
          if (a != T(1))
            for (int64_t d = 0; d < D; ++d) O[size_t(r * D + d)] *= a;
        }
        // O += P V over the bk real keys (padding columns of P are 0 and have no V row).
        tile_gemm(bq, D, bk, S.data(), kp, 1, kv.v_of(b * s.Hkv + hk, j, nk), D, O.data(), D, T(1), true);
      }

      T* lse_row = lse + (b * s.Hq + h) * s.Tq + q0;
      for (int64_t r = 0; r < bq; ++r) {
        T* dst = out + ((b * s.Tq + q0 + r) * s.Hq + h) * D;
        const T lr = l[size_t(r)];
        if (lr == T(0)) {
          std::fill(dst, dst + D, T(0));
          lse_row[r] = neg_inf;
        } else {
          const T inv = T(1) / lr;
          for (int64_t d = 0; d < D; ++d) dst[d] = O[size_t(r * D + d)] * inv;
          lse_row[r] = m[size_t(r)] + std::log(lr);
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
// One task per (b, kv head, key tile): it owns that tile's dK/dV and adds to the dQ rows of every
// query tile that sees it. Tasks are many and small (dynamic schedule, largest first), so the
// threads stay balanced even when one of them is slowed down; thread 0 adds into dq, the others
// into private dQ buffers summed at the end ((threads - 1) x the size of dq).
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const AttnPos& pos,
                        const T* out, const T* lse, const AttnShape& s, int64_t blk) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const T scale = T(1) / std::sqrt(T(s.D));
  const int64_t g = s.group(), D = s.D;
  const RowBounds bounds(pos, s.B, s.Tq, s.Tk, blk);
  const KeyTiles kt(s.Tk, blk, simd::lanes<T>());
  const int64_t nq = (s.Tq + blk - 1) / blk, nk = kt.n, kp = kt.kp;
  const int64_t ntask = s.B * s.Hkv * nk;
  const int nthreads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const size_t dq_size = size_t(s.B * s.Tq * s.Hq * D);
  std::vector<T> dq_priv(size_t(nthreads - 1) * dq_size, T(0));
  std::vector<char> wrote(size_t(nthreads), 0);

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

#pragma omp parallel num_threads(nthreads)
  {
    using Buf = simd::AlignedVector<T>;
    Buf Kt(size_t(D * kp)), Vt(size_t(D * kp)), P(size_t(blk * kp)), dP(size_t(blk * kp));
    Buf Kc(size_t(blk * D)), dK(size_t(blk * D)), dV(size_t(blk * D)), Qs(size_t(blk * D)), dOc(size_t(blk * D));
    const int me = omp_get_thread_num();
    T* dq_mine = me == 0 ? dq : dq_priv.data() + size_t(me - 1) * dq_size;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < ntask; ++task) {
      // Key tile j sees the query tiles from j on: the first tiles are the most work.
      const int64_t j = task / (s.B * s.Hkv), ht = task % (s.B * s.Hkv);
      const int64_t hk = ht % s.Hkv, b = ht / s.Hkv;
      const int64_t k0 = j * blk, bk = std::min(blk, s.Tk - k0);
      const T* K = k + ((b * s.Tk + k0) * s.Hkv + hk) * D;
      const T* Vr = v + ((b * s.Tk + k0) * s.Hkv + hk) * D;
      const int64_t ldkv = s.Hkv * D;
      const TileBounds &qb = bounds.qb(b), &kb = bounds.kb(b);
      const int32_t *qpos = pos.q(b), *kpos = pos.k(b), *qstart = pos.start(b);
      bool packed = false, touched = false;
      for (int64_t hg = 0; hg < g; ++hg) {
        const int64_t h = hk * g + hg;
        for (int64_t i = 0; i < nq; ++i) {
          if (tile_hidden(qb, i, kb, j)) continue;
          if (!packed) {
            pack_transposed(Kt.data(), K, ldkv, bk, kp, D);
            pack_transposed(Vt.data(), Vr, ldkv, bk, kp, D);
            pack_rows(Kc.data(), K, ldkv, bk, D);
            std::fill(dK.begin(), dK.end(), T(0));
            std::fill(dV.begin(), dV.end(), T(0));
            packed = true;
          }
          const bool full = tile_full(qb, i, kb, j);
          const int64_t q0 = i * blk, bq = std::min(blk, s.Tq - q0);
          const int64_t ldq = s.Hq * D;
          pack_rows(Qs.data(), q + ((b * s.Tq + q0) * s.Hq + h) * D, ldq, bq, D, scale);
          pack_rows(dOc.data(), dout + ((b * s.Tq + q0) * s.Hq + h) * D, ldq, bq, D);
          const T* dO = dOc.data();
          const T* L = lse + (b * s.Hq + h) * s.Tq + q0;
          const T* Dl = delta.data() + (b * s.Hq + h) * s.Tq + q0;
          // P = exp(Qs K^T - lse), masked.
          tile_gemm(bq, kp, D, Qs.data(), D, 1, Kt.data(), kp, P.data(), kp, T(1), false);
          if (!full || bk < kp)
            mask_tile(P.data(), bq, bk, kp, qpos + q0, kpos + k0, full, qstart ? qstart + q0 : nullptr);
          for (int64_t r = 0; r < bq; ++r) {
            T* row = P.data() + r * kp;
            if (L[r] == neg_inf)
              std::fill(row, row + kp, T(0));
            else
              exp_shift_sum(row, kp, L[r]);
          }
          // dV += P^T dO.
          tile_gemm(bk, D, bq, P.data(), 1, kp, dO, D, dV.data(), D, T(1), true);
          // dS = P * (dO V^T - Delta), in dP.
          tile_gemm(bq, kp, D, dO, D, 1, Vt.data(), kp, dP.data(), kp, T(1), false);
          for (int64_t r = 0; r < bq; ++r) {
            T* ds = dP.data() + r * kp;
            const T* p = P.data() + r * kp;
            const T dl = Dl[r];
            for (int64_t c = 0; c < kp; ++c) ds[c] = p[c] * (ds[c] - dl);
          }
          // dQ += dS K * scale, into dq (thread 0) or this thread's private copy.
          tile_gemm(bq, D, bk, dP.data(), kp, 1, Kc.data(), D, dq_mine + ((b * s.Tq + q0) * s.Hq + h) * D, ldq,
                    scale, true);
          wrote[size_t(me)] = 1;
          // dK += dS^T Qs.
          tile_gemm(bk, D, bq, dP.data(), 1, kp, Qs.data(), D, dK.data(), D, T(1), true);
          touched = true;
        }
      }
      if (!touched) continue;
      for (int64_t c = 0; c < bk; ++c) {
        T* dkr = dk + ((b * s.Tk + k0 + c) * s.Hkv + hk) * D;
        T* dvr = dv + ((b * s.Tk + k0 + c) * s.Hkv + hk) * D;
        for (int64_t d = 0; d < D; ++d) {
          dkr[d] += dK[size_t(c * D + d)];
          dvr[d] += dV[size_t(c * D + d)];
        }
      }
    }
  }

  // dq += the other threads' private dQ.
  bool any = false;
  for (int t = 1; t < nthreads; ++t) any = any || wrote[size_t(t)];
  if (any) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < s.B * s.Tq; ++r)
      for (int t = 1; t < nthreads; ++t) {
        if (!wrote[size_t(t)]) continue;
        const T* src = dq_priv.data() + size_t(t - 1) * dq_size + size_t(r * s.Hq * D);
        T* dst = dq + r * s.Hq * D;
        for (int64_t e = 0; e < s.Hq * D; ++e) dst[e] += src[e];
      }
  }
}

// Plain causal attention with one row of positions shared by the batch.
template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const int32_t* qpos,
                       const int32_t* kpos, const AttnShape& s, int64_t blk) {
  attention_forward(out, lse, q, k, v, AttnPos{qpos, kpos, nullptr, 0, 0}, s, blk);
}
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                        const int32_t* qpos, const int32_t* kpos, const T* out, const T* lse,
                        const AttnShape& s, int64_t blk) {
  attention_backward(dq, dk, dv, dout, q, k, v, AttnPos{qpos, kpos, nullptr, 0, 0}, out, lse, s, blk);
}

}  // namespace lct::cpu
