// Tensor views: pointer + shape + dtype, no ownership (memory belongs to an Arena or a backend
// allocation). Row-major and contiguous; dim 0 is the slowest.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

#include "core/error.h"

namespace lct {

enum class DType : uint8_t { F32, F64, BF16, I32 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::I32: return 4;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
  }
  return "?";
}

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }

constexpr int kMaxDims = 5;

struct Tensor {
  void* ptr = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {0, 0, 0, 0, 0};

  Tensor() = default;
  Tensor(void* p, DType t, std::initializer_list<int64_t> dims) : ptr(p), dtype(t) {
    LCT_CHECK(dims.size() <= kMaxDims, "too many dims");
    for (int64_t d : dims) shape[ndim++] = d;
  }

  bool empty() const { return ptr == nullptr; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return ndim == 0 ? 0 : n;
  }
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return i < 0 ? shape[ndim + i] : shape[i]; }
  // Rows = product of all dims but the last; cols = last dim.
  int64_t rows() const { return ndim == 0 ? 0 : numel() / shape[ndim - 1]; }
  int64_t cols() const { return ndim == 0 ? 0 : shape[ndim - 1]; }

  template <class T> T* data() const {
    LCT_CHECK(dtype == dtype_of<T>(), "tensor is ", dtype_name(dtype), ", not ", dtype_name(dtype_of<T>()));
    return static_cast<T*>(ptr);
  }

  // Same memory, another shape with the same element count.
  Tensor view(std::initializer_list<int64_t> dims) const {
    Tensor t(ptr, dtype, dims);
    LCT_CHECK(t.numel() == numel(), "view changes element count: ", numel(), " -> ", t.numel());
    return t;
  }
  // Rows [begin, begin+count) along dim 0 (contiguous).
  Tensor slice(int64_t begin, int64_t count) const {
    LCT_CHECK(ndim >= 1 && begin >= 0 && begin + count <= shape[0], "slice out of range");
    Tensor t = *this;
    int64_t row = numel() / shape[0];
    t.ptr = static_cast<char*>(ptr) + size_t(begin * row) * dtype_size(dtype);
    t.shape[0] = count;
    return t;
  }
  std::string shape_str() const {
    std::string s = "[";
    for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

inline bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i]) return false;
  return true;
}

// bf16 on the host: the upper 16 bits of an fp32, rounded to nearest even.
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace lct
