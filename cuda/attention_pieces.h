// Splits attention by explicit positions into pieces that index-based causal masks can do (the
// cuDNN path): queries and keys are cut into runs of consecutive positions, and each pair of
// runs becomes at most two pieces, keys entirely in the past of the query run (no mask) and the
// diagonal part where both runs start at the same position (top-left causal mask). Every visible
// (query, key) pair lies in exactly one piece (tests/gpu/test_attention_pieces.cpp). Host-only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lct::cuda {

// Rows [index, index + len) hold positions first, first + 1, ...
struct PosRun {
  int64_t index, len;
  int64_t first;
};

inline std::vector<PosRun> position_runs(const std::vector<int32_t>& pos) {
  std::vector<PosRun> runs;
  for (int64_t i = 0; i < int64_t(pos.size());) {
    int64_t j = i + 1;
    while (j < int64_t(pos.size()) && int64_t(pos[size_t(j)]) == int64_t(pos[size_t(j - 1)]) + 1) ++j;
    runs.push_back({i, j - i, pos[size_t(i)]});
    i = j;
  }
  return runs;
}

// Query rows [q0, q0 + nq) against key rows [k0, k0 + nk); causal: key j visible to query i iff
// j <= i (the two ranges start at the same position), else every pair is visible.
struct AttnPiece {
  int64_t q0, nq, k0, nk;
  bool causal;
};

inline std::vector<AttnPiece> attention_pieces(const std::vector<int32_t>& qpos, const std::vector<int32_t>& kpos) {
  std::vector<AttnPiece> out;
  const std::vector<PosRun> qr = position_runs(qpos), kr = position_runs(kpos);
  for (const PosRun& q : qr) {
    const int64_t a = q.first, qe = q.first + q.len;  // query positions [a, qe)
    for (const PosRun& k : kr) {
      const int64_t b = k.first, ke = k.first + k.len;  // key positions [b, ke)
      if (b > qe - 1) continue;                         // every key after every query
      if (ke - 1 <= a) {                                // every key visible to every query
        out.push_back({q.index, q.len, k.index, k.len, false});
        continue;
      }
      if (b < a) out.push_back({q.index, q.len, k.index, a - b, false});  // keys [b, a): all visible
      const int64_t s = std::max(a, b), e = std::min(ke, qe);  // the diagonal: positions [s, e) of keys
      out.push_back({q.index + (s - a), qe - s, k.index + (s - b), e - s, true});
    }
  }
  return out;
}

}  // namespace lct::cuda
