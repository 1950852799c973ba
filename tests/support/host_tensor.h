// Host-side tensors for tests of the cpu backend (whose memory is host memory).
#pragma once

#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace lct::test {

template <class T>
struct HostTensor {
  std::vector<T> v;
  Tensor t;
  HostTensor() = default;
  explicit HostTensor(std::initializer_list<int64_t> dims, T fill = T(0)) {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    v.assign(size_t(n), fill);
    t = Tensor(v.data(), dtype_of<T>(), dims);
  }
  HostTensor(const HostTensor& o) : v(o.v), t(o.t) { t.ptr = v.data(); }
  HostTensor& operator=(const HostTensor& o) {
    v = o.v;
    t = o.t;
    t.ptr = v.data();
    return *this;
  }
  void randn(Rng& rng, double scale = 1.0) {
    for (auto& x : v) x = T(rng.normal() * scale);
  }
  operator Tensor() const { return t; }
  size_t size() const { return v.size(); }
  T& operator[](size_t i) { return v[i]; }
};

}  // namespace lct::test
