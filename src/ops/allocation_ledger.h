// Bookkeeping shared by the backends' alloc()/free() (and alloc_host()/free_host()): the size and
// category of every live allocation, the bytes held now and their high-water marks, in total and
// per category (metrics.jsonl's device_peak_bytes; --plan predicts the same categories).
// Thread-safe: the ring's progress threads and the data prefetcher may allocate while the step runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"

namespace lct {

class AllocationLedger {
 public:
  void add(void* p, size_t bytes, Mem kind) {
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = {bytes, kind};
    const int k = int(kind);
    use_.now += int64_t(bytes);
    use_.peak = std::max(use_.peak, use_.now);
    use_.kind_now[k] += int64_t(bytes);
    use_.kind_peak[k] = std::max(use_.kind_peak[k], use_.kind_now[k]);
  }
  // Forgets p; a pointer the ledger never saw is a bug in the caller, not an input error.
  void remove(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sizes_.find(p);
    LCT_CHECK(it != sizes_.end(), "free of a pointer this backend did not allocate");
    use_.now -= int64_t(it->second.first);
    use_.kind_now[int(it->second.second)] -= int64_t(it->second.first);
    sizes_.erase(it);
  }
  // The live pointers (for a backend's destructor), and forgets them.
  std::vector<void*> release_all() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<void*> out;
    out.reserve(sizes_.size());
    for (auto& kv : sizes_) out.push_back(kv.first);
    sizes_.clear();
    use_.now = 0;
    for (int64_t& b : use_.kind_now) b = 0;
    return out;
  }
  MemoryUse use() const {
    std::lock_guard<std::mutex> lock(mu_);
    return use_;
  }
  int64_t allocated() const { return use().now; }
  int64_t peak() const { return use().peak; }

 private:
  mutable std::mutex mu_;
  std::unordered_map<void*, std::pair<size_t, Mem>> sizes_;
  MemoryUse use_;
};

}  // namespace lct
