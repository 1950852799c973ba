// Elementwise and reduction ops over flat vectors: residual add, optimizer updates, norms.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/cpu/simd.h"

namespace lct::cpu {

// `omp parallel for simd`: the loops are split over threads and vectorised (the reductions too,
// which reorders their sums; they accumulate in double).
template <class T> void add_forward(T* y, const T* a, const T* b, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <class T> void add_backward(T* da, T* db, const T* dy, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    da[i] += dy[i];
    db[i] += dy[i];
  }
}

// AdamW in double arithmetic whatever T stores, eight elements at a time (simd::sqrt: a library
// sqrt call would keep the loop scalar, 6x slower), the tail element by element.
template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, int64_t n, double lr, double b1, double b2, double eps, double wd,
                  int64_t step, double grad_scale) {
  using D8 = simd::Vec<double>;
  const double bc1 = 1.0 - std::pow(b1, double(step));
  const double bc2 = 1.0 - std::pow(b2, double(step));
  auto one = [&](int64_t i) {
    const double gi = double(g[i]) * grad_scale;
    const double mi = b1 * double(m[i]) + (1.0 - b1) * gi;
    const double vi = b2 * double(v[i]) + (1.0 - b2) * gi * gi;
    m[i] = T(mi);
    v[i] = T(vi);
    const double upd = (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    p[i] = T(double(p[i]) - lr * (upd + wd * double(p[i])));
  };
  const int64_t nv = n / 8;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < nv; ++c) {
    const int64_t i = c * 8;
    const D8 gi = __builtin_convertvector(simd::load8(g + i), D8) * grad_scale;
    const D8 mi = b1 * __builtin_convertvector(simd::load8(m + i), D8) + (1.0 - b1) * gi;
    const D8 vi = b2 * __builtin_convertvector(simd::load8(v + i), D8) + (1.0 - b2) * gi * gi;
    simd::store8(m + i, __builtin_convertvector(mi, simd::Vec8<T>));
    simd::store8(v + i, __builtin_convertvector(vi, simd::Vec8<T>));
    const D8 upd = (mi / bc1) / (simd::sqrt(vi / bc2) + eps);
    const D8 pi = __builtin_convertvector(simd::load8(p + i), D8);
    simd::store8(p + i, __builtin_convertvector(pi - lr * (upd + wd * pi), simd::Vec8<T>));
  }
  for (int64_t i = nv * 8; i < n; ++i) one(i);
}

template <class T>
void sgd_update(T* p, const T* g, int64_t n, double lr, double wd, double grad_scale) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = T(double(p[i]) - lr * (double(g[i]) * grad_scale + wd * double(p[i])));
}

template <class T> double sum_squares(const T* x, int64_t n) {
  double s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return s;
}

template <class T> void scale(T* x, int64_t n, double a) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = T(double(x[i]) * a);
}

template <class T> void axpy(T* y, double a, const T* x, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = T(double(y[i]) + a * double(x[i]));
}

// dst[i0..i4] (contiguous) = (accumulate: +=) src[sum_k i_k * strides[k]] (ops.h CopyMap).
template <class T>
void permute_copy(T* dst, const T* src, const int64_t dims[5], const int64_t strides[5], bool accumulate) {
  const int64_t outer = dims[0] * dims[1] * dims[2] * dims[3], n = dims[4], s4 = strides[4];
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rest = o, off = 0;
    for (int k = 3; k >= 0; --k) {
      off += (rest % dims[k]) * strides[k];
      rest /= dims[k];
    }
    T* d = dst + o * n;
    const T* s = src + off;
    if (accumulate) {
      for (int64_t i = 0; i < n; ++i) d[i] += s[i * s4];
    } else if (s4 == 1) {
      for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = s[i * s4];
    }
  }
}

}  // namespace lct::cpu
