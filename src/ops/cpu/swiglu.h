// SwiGLU: h = silu(gate) * up, silu(g) = g * sigmoid(g). Vectorised (simd::exp) in float.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/cpu/simd.h"

namespace lct::cpu {

namespace swiglu_detail {

// Calls f(first, count) over [0, n) in chunks split across threads, each a whole number of
// vectors except the last.
template <class T, class F>
void for_chunks(int64_t n, F&& f) {
  constexpr int64_t chunk = 4096;
  const int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) f(c * chunk, std::min(chunk, n - c * chunk));
}

template <class T> inline simd::Vec<T> sigmoid(const simd::Vec<T>& g) { return T(1) / (T(1) + simd::exp(-g)); }
template <class T> inline T sigmoid(T g) { return T(1) / (T(1) + std::exp(-g)); }

}  // namespace swiglu_detail

template <class T>
void swiglu_forward(T* h, const T* gate, const T* up, int64_t n) {
  using namespace swiglu_detail;
  constexpr int64_t L = simd::lanes<T>();
  for_chunks<T>(n, [&](int64_t i0, int64_t m) {
    int64_t i = i0;
    for (; i + L <= i0 + m; i += L) {
      const simd::Vec<T> g = simd::load(gate + i);
      simd::store(h + i, g * sigmoid<T>(g) * simd::load(up + i));
    }
    for (; i < i0 + m; ++i) h[i] = gate[i] * sigmoid(gate[i]) * up[i];
  });
}

// dup = dh * silu(g); dgate = dh * up * sig * (1 + g * (1 - sig)).
template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dh, const T* gate, const T* up, int64_t n) {
  using namespace swiglu_detail;
  constexpr int64_t L = simd::lanes<T>();
  for_chunks<T>(n, [&](int64_t i0, int64_t m) {
    int64_t i = i0;
    for (; i + L <= i0 + m; i += L) {
      const simd::Vec<T> g = simd::load(gate + i), d = simd::load(dh + i), sig = sigmoid<T>(g);
      simd::store(dup + i, d * (g * sig));
      simd::store(dgate + i, d * simd::load(up + i) * sig * (T(1) + g * (T(1) - sig)));
    }
    for (; i < i0 + m; ++i) {
      const T g = gate[i], sig = sigmoid(g);
      dup[i] = dh[i] * (g * sig);
      dgate[i] = dh[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
    }
  });
}

}  // namespace lct::cpu
