// RoPE frequencies for every scaling type (HF transformers' definitions; ntk is the static
// NTK-aware closed form) and cos/sin tables for explicit global positions. Angles are computed
// in double: near position 1M an fp32 angle moves in steps of ~0.06 rad.
#pragma once

#include <cstdint>
#include <vector>

#include "deck/config.h"

namespace lct {

struct RopeFrequencies {
  std::vector<double> inv_freq;  // head_dim / 2 values
  double attention_factor = 1.0;  // multiplies cos and sin (yarn)
};

// seq_len is the current context (used by dynamic NTK).
RopeFrequencies rope_frequencies(const RopeConfig& r, int64_t head_dim, int64_t seq_len);

// cos[t * D/2 + i] = attention_factor * cos(pos[t] * inv_freq[i]), likewise sin.
void rope_tables(const RopeFrequencies& f, const std::vector<int32_t>& positions, std::vector<double>& cos,
                 std::vector<double>& sin);

}  // namespace lct
