// SwiGLU: h = silu(gate) * up.
#pragma once

#include <cmath>
#include <cstdint>

namespace lct::cpu {

template <class T>
void swiglu_forward(T* h, const T* gate, const T* up, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T g = gate[i];
    T sig = T(1) / (T(1) + std::exp(-g));
    h[i] = g * sig * up[i];
  }
}

template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dh, const T* gate, const T* up, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    T g = gate[i];
    T sig = T(1) / (T(1) + std::exp(-g));
    T silu = g * sig;
    dup[i] = dh[i] * silu;
    dgate[i] = dh[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
  }
}

}  // namespace lct::cpu
