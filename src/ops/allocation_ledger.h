// Bookkeeping shared by the backends' alloc()/free(): the size of every live allocation, the bytes
// held now and their high-water mark (metrics.jsonl's peak_device_bytes). Thread-safe: the ring's
// progress threads and the data prefetcher may allocate while the step runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace lct {

class AllocationLedger {
 public:
  void add(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = bytes;
    allocated_ += int64_t(bytes);
    peak_ = std::max(peak_, allocated_);
  }
  // Forgets p; a pointer the ledger never saw is a bug in the caller, not an input error.
  void remove(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sizes_.find(p);
    LCT_CHECK(it != sizes_.end(), "free of a pointer this backend did not allocate");
    allocated_ -= int64_t(it->second);
    sizes_.erase(it);
  }
  // The live pointers (for a backend's destructor), and forgets them.
  std::vector<void*> release_all() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<void*> out;
    out.reserve(sizes_.size());
    for (auto& kv : sizes_) out.push_back(kv.first);
    sizes_.clear();
    allocated_ = 0;
    return out;
  }
  int64_t allocated() const {
    std::lock_guard<std::mutex> lock(mu_);
    return allocated_;
  }
  int64_t peak() const {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
  int64_t allocated_ = 0, peak_ = 0;
};

}  // namespace lct
