// Rotary position embedding, HF rotate-half pairing: (x_i, x_{i+D/2}) rotate by angle_i.
// y1 = x1 cos - x2 sin; y2 = x2 cos + x1 sin. Tables hold cos/sin per local position, shared by
// the B sequences or (per_row) one table per sequence.
#pragma once

#include <cstdint>

namespace lct::cpu {

template <class T>
void rope_apply(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H, int64_t D, bool transpose,
                bool per_row = false) {
  const int64_t half = D / 2;
  const T sgn = transpose ? T(-1) : T(1);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tn; ++t) {
      const int64_t row = per_row ? b * Tn + t : t;
      const T* c = cos + row * half;
      const T* s = sin + row * half;
      for (int64_t h = 0; h < H; ++h) {
        T* v = x + ((b * Tn + t) * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          T x1 = v[i], x2 = v[i + half];
          v[i] = x1 * c[i] - sgn * x2 * s[i];
          v[i + half] = x2 * c[i] + sgn * x1 * s[i];
        }
      }
    }
}

}  // namespace lct::cpu
