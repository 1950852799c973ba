// Backend memory that one object owns for its lifetime: alloc() returns a tensor view of fresh
// (zeroed) memory from the ops' backend, and the destructor frees every allocation, also when a
// constructor or a prefill throws half-way. Llama, RingAttention, ContextAttention and LlamaDecoder
// (its buffers, and each prefill's activations) hold one instead of a vector of raw pointers.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <vector>

#include "core/tensor.h"
#include "ops/ops.h"

namespace lct {

class OwnedBuffers {
 public:
  explicit OwnedBuffers(Ops& ops) : ops_(ops) {}
  ~OwnedBuffers() { release(); }
  OwnedBuffers(const OwnedBuffers&) = delete;
  OwnedBuffers& operator=(const OwnedBuffers&) = delete;

  Tensor alloc(DType t, std::initializer_list<int64_t> dims, Mem kind = Mem::Activations) {
    Tensor x(nullptr, t, dims);
    x.ptr = alloc_bytes(x.bytes(), kind);
    return x;
  }
  void* alloc_bytes(size_t bytes, Mem kind = Mem::Activations) {
    owned_.reserve(owned_.size() + 1);  // so that the push below cannot throw and leak the allocation
    void* p = ops_.alloc(bytes, kind);
    owned_.push_back(p);
    return p;
  }
  // Frees everything now, newest first (a destructor that must free before its other members go).
  void release() {
    for (auto it = owned_.rbegin(); it != owned_.rend(); ++it) ops_.free(*it);
    owned_.clear();
  }

 private:
  Ops& ops_;
  std::vector<void*> owned_;
};

}  // namespace lct
