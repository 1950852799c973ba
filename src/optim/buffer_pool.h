// Backend buffers reused by size. ZeRO's gathered units, unit gradients and reduce-scatter results
// come and go at every layer; allocating them each time would serialise the device (cudaFree
// waits for all work), so a released buffer waits here for the next unit of its size. What the pool
// holds stays allocated (and counted by the ledger under its category) until the pool goes.
#pragma once

#include <cstddef>
#include <map>
#include <vector>

#include "ops/ops.h"

namespace lct {

class BufferPool {
 public:
  BufferPool(Ops& ops, Mem kind) : ops_(ops), kind_(kind) {}
  ~BufferPool() {
    for (void* p : all_) ops_.free(p);
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of `bytes` (contents undefined): a free one of that size, else a new one.
  void* take(size_t bytes) {
    auto& f = free_[bytes];
    if (!f.empty()) {
      void* p = f.back();
      f.pop_back();
      return p;
    }
    void* p = ops_.alloc(bytes, kind_);
    all_.push_back(p);
    size_of_[p] = bytes;
    return p;
  }
  void give(void* p) { free_[size_of_.at(p)].push_back(p); }

 private:
  Ops& ops_;
  Mem kind_;
  std::vector<void*> all_;
  std::map<void*, size_t> size_of_;
  std::map<size_t, std::vector<void*>> free_;
};

}  // namespace lct
