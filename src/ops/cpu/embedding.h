// Token embedding over a vocabulary slice [vocab_begin, vocab_begin + V) (vocab-parallel under tp).
#pragma once

#include <cstdint>
#include <cstring>

namespace lct::cpu {

template <class T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t C, int64_t vocab_begin,
                       int64_t V) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    int64_t id = int64_t(tokens[n]) - vocab_begin;
    if (id >= 0 && id < V)
      std::memcpy(out + n * C, wte + id * C, sizeof(T) * C);
    else
      std::memset(out + n * C, 0, sizeof(T) * C);
  }
}

// Serial over tokens (repeated ids would race); the work is N*C additions.
template <class T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t N, int64_t C, int64_t vocab_begin,
                        int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    int64_t id = int64_t(tokens[n]) - vocab_begin;
    if (id < 0 || id >= V) continue;
    T* row = dwte + id * C;
    const T* g = dout + n * C;
    for (int64_t c = 0; c < C; ++c) row[c] += g[c];
  }
}

}  // namespace lct::cpu
