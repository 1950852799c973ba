#include "attention/sharding.h"

#include <algorithm>

#include "core/error.h"

namespace lct {

std::vector<int32_t> shard_positions(int64_t T, int cp, int r, bool zigzag) {
  std::vector<int32_t> pos;
  pos.reserve(size_t(T / cp));
  if (!zigzag || cp == 1) {
    LCT_CHECK(T % cp == 0, "T ", T, " not divisible by cp ", cp);
    const int64_t n = T / cp;
    for (int64_t i = 0; i < n; ++i) pos.push_back(int32_t(r * n + i));
    return pos;
  }
  LCT_CHECK(T % (2 * cp) == 0, "T ", T, " not divisible by 2*cp ", 2 * cp);
  const int64_t c = T / (2 * cp);
  for (int64_t i = 0; i < c; ++i) pos.push_back(int32_t(r * c + i));
  for (int64_t i = 0; i < c; ++i) pos.push_back(int32_t((2 * cp - 1 - r) * c + i));
  return pos;
}

int64_t causal_pairs(const std::vector<int32_t>& qpos, const std::vector<int32_t>& kpos) {
  std::vector<int32_t> k = kpos;
  std::sort(k.begin(), k.end());
  int64_t n = 0;
  for (int32_t q : qpos) n += std::upper_bound(k.begin(), k.end(), q) - k.begin();
  return n;
}

}  // namespace lct
