// RMSNorm forward/backward (HF LlamaRMSNorm: y = w * x * rsqrt(mean(x^2) + eps)).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include <omp.h>

namespace lct::cpu {

template <class T>
void rmsnorm_forward(T* y, T* rstd, const T* x, const T* w, int64_t N, int64_t C, double eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    T* yr = y + n * C;
    T ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
    T r = T(1) / std::sqrt(ss / T(C) + T(eps));
    rstd[n] = r;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = w[c] * (xr[c] * r);
  }
}

// dx += (r * w*dy) - x * r^3/C * sum_j(w_j dy_j x_j);  dw += dy * x * r.
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* rstd, int64_t N, int64_t C) {
  int nt = omp_get_max_threads();
  std::vector<T> dw_part(size_t(nt) * C, T(0));  // per-thread partial sums: no races on dw
#pragma omp parallel
  {
    T* dwp = dw_part.data() + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = x + n * C;
      const T* dyr = dy + n * C;
      T* dxr = dx + n * C;
      T r = rstd[n];
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) dot += w[c] * dyr[c] * xr[c];
      T k = dot * r * r * r / T(C);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        dxr[c] += r * w[c] * dyr[c] - k * xr[c];
        dwp[c] += dyr[c] * xr[c] * r;
      }
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int64_t c = 0; c < C; ++c) dw[c] += dw_part[size_t(t) * C + c];
}

}  // namespace lct::cpu
