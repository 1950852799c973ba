// Elementwise and reduction ops over flat vectors: residual add, optimizer updates, norms.
#pragma once

#include <cmath>
#include <cstdint>

namespace lct::cpu {

template <class T> void add_forward(T* y, const T* a, const T* b, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <class T> void add_backward(T* da, T* db, const T* dy, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    da[i] += dy[i];
    db[i] += dy[i];
  }
}

template <class T>
void adamw_update(T* p, T* m, T* v, const T* g, int64_t n, double lr, double b1, double b2, double eps, double wd,
                  int64_t step, double grad_scale) {
  const double bc1 = 1.0 - std::pow(b1, double(step));
  const double bc2 = 1.0 - std::pow(b2, double(step));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double gi = double(g[i]) * grad_scale;
    const double mi = b1 * double(m[i]) + (1.0 - b1) * gi;
    const double vi = b2 * double(v[i]) + (1.0 - b2) * gi * gi;
    m[i] = T(mi);
    v[i] = T(vi);
    const double upd = (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    p[i] = T(double(p[i]) - lr * (upd + wd * double(p[i])));
  }
}

template <class T>
void sgd_update(T* p, const T* g, int64_t n, double lr, double wd, double grad_scale) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = T(double(p[i]) - lr * (double(g[i]) * grad_scale + wd * double(p[i])));
}

template <class T> double sum_squares(const T* x, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  return s;
}

template <class T> void scale(T* x, int64_t n, double a) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = T(double(x[i]) * a);
}

template <class T> void axpy(T* y, double a, const T* x, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = T(double(y[i]) + a * double(x[i]));
}

}  // namespace lct::cpu
