#include "infer/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace lct {

KvCache::KvCache(Ops& ops, int64_t n_layers, int64_t capacity, int64_t Hkv, int64_t D)
    : ops_(ops), layers_(n_layers), capacity_(capacity), Hkv_(Hkv), D_(D) {
  const DType act = ops_.act_dtype();
  const int64_t cap = std::max<int64_t>(capacity_, 1);  // an empty shard still has valid buffers
  for (int64_t l = 0; l < layers_; ++l) {
    Tensor k(nullptr, act, {cap, Hkv_, D_}), v(nullptr, act, {cap, Hkv_, D_});
    k.ptr = ops_.alloc(k.bytes());
    v.ptr = ops_.alloc(v.bytes());
    k_.push_back(k);
    v_.push_back(v);
  }
  pos_ = Tensor(nullptr, DType::I32, {cap});
  pos_.ptr = ops_.alloc(pos_.bytes());
}

KvCache::~KvCache() {
  for (auto& t : k_) ops_.free(t.ptr);
  for (auto& t : v_) ops_.free(t.ptr);
  ops_.free(pos_.ptr);
}

int64_t KvCache::bytes() const {
  int64_t b = int64_t(pos_.bytes());
  for (int64_t l = 0; l < layers_; ++l) b += int64_t(k_[size_t(l)].bytes() + v_[size_t(l)].bytes());
  return b;
}

int64_t KvCache::append_positions(const std::vector<int32_t>& positions) {
  const int64_t n = int64_t(positions.size()), at = size_;
  LCT_CHECK(size_ + n <= capacity_, "kv cache full: ", size_ + n, " > ", capacity_);
  if (n > 0) ops_.from_host(pos_.slice(size_, n), positions.data());
  pos_host_.insert(pos_host_.end(), positions.begin(), positions.end());
  size_ += n;
  return at;
}

void KvCache::write(int layer, int64_t at, const Tensor& k, const Tensor& v, int64_t row0, int64_t count) {
  LCT_CHECK(layer >= 0 && layer < layers_ && at >= 0 && at + count <= size_, "kv cache write out of range");
  if (count == 0) return;
  const Tensor ks = k.view({k.numel() / (Hkv_ * D_), Hkv_, D_}).slice(row0, count);
  const Tensor vs = v.view({v.numel() / (Hkv_ * D_), Hkv_, D_}).slice(row0, count);
  ops_.convert(k_[size_t(layer)].slice(at, count), ks);
  ops_.convert(v_[size_t(layer)].slice(at, count), vs);
}

Tensor KvCache::keys(int layer) const {
  return k_[size_t(layer)].slice(0, size_).view({1, size_, Hkv_, D_});
}
Tensor KvCache::values(int layer) const {
  return v_[size_t(layer)].slice(0, size_).view({1, size_, Hkv_, D_});
}
Tensor KvCache::positions() const { return pos_.slice(0, size_); }

}  // namespace lct
