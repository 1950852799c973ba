// How a sequence of T tokens is split over the cp ranks of a ring. Zigzag (causal load balance):
// T is cut into 2*cp chunks and ring position r holds chunks r and 2*cp-1-r, so every rank has
// the same amount of causal attention work. Contiguous (for comparison): position r holds
// tokens [r*T/cp, (r+1)*T/cp).
#pragma once

#include <cstdint>
#include <vector>

namespace lct {

// Global positions of the tokens ring position r holds, in local order (T / cp of them).
std::vector<int32_t> shard_positions(int64_t T, int cp, int r, bool zigzag);

// Score elements (query, key) pairs with key position <= query position, for sorted or unsorted
// positions (counts causal attention work).
int64_t causal_pairs(const std::vector<int32_t>& qpos, const std::vector<int32_t>& kpos);

}  // namespace lct
