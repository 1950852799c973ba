// Portable SIMD for the cpu kernels: GCC/Clang vector extensions of one cache line (16 floats or
// 8 doubles; AVX-512 registers with -march=native, split by the compiler on narrower targets),
// unaligned loads/stores, and a vectorised exp for float.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

namespace lct::cpu::simd {

template <class T>
struct VecOf {
  typedef T type __attribute__((vector_size(64), aligned(sizeof(T))));
};
template <class T> using Vec = typename VecOf<T>::type;
template <class T> constexpr int lanes() { return int(64 / sizeof(T)); }

// Buffers whose rows are whole vectors must start on a cache line: a vector load that straddles
// two lines costs about half the speed of the tile kernels.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U> AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const AlignedAllocator&) const { return true; }
  bool operator!=(const AlignedAllocator&) const { return false; }
};
template <class T> using AlignedVector = std::vector<T, AlignedAllocator<T>>;

template <class T> inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T> inline void store(T* p, const Vec<T>& v) { std::memcpy(p, &v, sizeof v); }
template <class T> inline Vec<T> splat(T x) { return Vec<T>{} + x; }

template <class T> inline T hmax(const Vec<T>& v) {
  T m = v[0];
  for (int i = 1; i < lanes<T>(); ++i) m = v[i] > m ? v[i] : m;
  return m;
}
template <class T> inline T hsum(const Vec<T>& v) {
  T s = 0;
  for (int i = 0; i < lanes<T>(); ++i) s += v[i];
  return s;
}
template <class T> inline Vec<T> vmax(const Vec<T>& a, const Vec<T>& b) { return a > b ? a : b; }

// exp for float lanes: 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (rel. error
// ~2e-7, about 1.5 ulp). Inputs below -87.3 (including -inf) give exactly 0, inputs above 88.3
// give +inf (the kernels pass softmax arguments, <= 0). Doubles use std::exp lane by lane (the f64
// backend serves gradient checks).
inline Vec<float> exp(Vec<float> x) {
  using V = Vec<float>;
  using I = Vec<int32_t>;
  const V lo = splat(-87.3f), hi = splat(88.3f);
  const auto tiny = x < lo, huge = x > hi;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const V shifter = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to the nearest integer
  V n = x * 1.44269504088896341f + shifter;
  n = n - shifter;
  V r = x - n * 0.693359375f;     // ln2 split in two for an exact product with n
  r = r - n * -2.12194440e-4f;
  V p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const I e = (__builtin_convertvector(n, I) + 127) << 23;
  V scale;
  std::memcpy(&scale, &e, sizeof scale);
  V y = p * scale;
  y = tiny ? V{} : y;
  return huge ? splat(std::numeric_limits<float>::infinity()) : y;
}

// Eight lanes of any element type (the optimizer's loop computes in double whatever it stores).
template <class T>
struct Vec8Of {
  typedef T type __attribute__((vector_size(8 * sizeof(T)), aligned(sizeof(T))));
};
template <class T> using Vec8 = typename Vec8Of<T>::type;
template <class T> inline Vec8<T> load8(const T* p) {
  Vec8<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T> inline void store8(T* p, const Vec8<T>& v) { std::memcpy(p, &v, sizeof v); }

// Correctly rounded square root of 8 doubles (a library sqrt may set errno, which keeps the
// compiler from vectorising a loop that calls it).
inline Vec<double> sqrt(Vec<double> x) {
#if defined(__AVX512F__)
  __m512d v;
  std::memcpy(&v, &x, sizeof v);
  v = _mm512_maskz_sqrt_pd(__mmask8(0xFF), v);
  std::memcpy(&x, &v, sizeof v);
#else
  for (int i = 0; i < lanes<double>(); ++i) x[i] = std::sqrt(x[i]);
#endif
  return x;
}

inline Vec<double> exp(Vec<double> x) {
  for (int i = 0; i < lanes<double>(); ++i) x[i] = std::exp(x[i]);
  return x;
}

}  // namespace lct::cpu::simd
