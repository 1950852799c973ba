#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace lct {

RopeFrequencies rope_frequencies(const RopeConfig& r, int64_t head_dim, int64_t seq_len) {
  const int64_t half = head_dim / 2;
  const double d = double(head_dim);
  const double orig = double(r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings
                                                                    : r.base_context);
  auto base_freqs = [&](double theta) {
    std::vector<double> inv(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) inv[size_t(i)] = 1.0 / std::pow(theta, 2.0 * double(i) / d);
    return inv;
  };
  RopeFrequencies f;
  if (r.scaling == "none") {
    f.inv_freq = base_freqs(r.theta);
  } else if (r.scaling == "linear") {
    f.inv_freq = base_freqs(r.theta);
    for (auto& x : f.inv_freq) x /= r.factor;
  } else if (r.scaling == "ntk") {
    f.inv_freq = base_freqs(r.theta * std::pow(r.factor, d / (d - 2)));
  } else if (r.scaling == "dynamic") {
    double theta = r.theta;
    const double L = double(seq_len);
    if (L > orig) theta = r.theta * std::pow(r.factor * L / orig - (r.factor - 1.0), d / (d - 2));
    f.inv_freq = base_freqs(theta);
  } else if (r.scaling == "llama3") {
    f.inv_freq = base_freqs(r.theta);
    const double low_wavelen = orig / r.low_freq_factor, high_wavelen = orig / r.high_freq_factor;
    for (auto& inv : f.inv_freq) {
      const double wavelen = 2.0 * M_PI / inv;
      if (wavelen > low_wavelen) {
        inv = inv / r.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (orig / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        inv = (1.0 - smooth) * inv / r.factor + smooth * inv;
      }
    }
  } else if (r.scaling == "yarn") {
    auto correction_dim = [&](double rotations) {
      return d * std::log(orig / (rotations * 2.0 * M_PI)) / (2.0 * std::log(r.theta));
    };
    double low = std::max(0.0, std::floor(correction_dim(r.beta_fast)));
    double high = std::min(d - 1.0, std::ceil(correction_dim(r.beta_slow)));
    if (low == high) high += 0.001;  // as transformers' linear ramp avoids a division by zero
    const std::vector<double> extra = base_freqs(r.theta);
    f.inv_freq.resize(size_t(half));
    for (int64_t i = 0; i < half; ++i) {
      const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      const double extrapolation = 1.0 - ramp;
      const double inter = extra[size_t(i)] / r.factor;
      f.inv_freq[size_t(i)] = inter * (1.0 - extrapolation) + extra[size_t(i)] * extrapolation;
    }
    f.attention_factor = r.attention_factor > 0 ? r.attention_factor
                                                : (r.factor <= 1 ? 1.0 : 0.1 * std::log(r.factor) + 1.0);
  } else {
    throw InputError(str("unknown rope.scaling '", r.scaling, "'"));
  }
  return f;
}

void rope_tables(const RopeFrequencies& f, const std::vector<int32_t>& positions, std::vector<double>& cos,
                 std::vector<double>& sin) {
  const size_t half = f.inv_freq.size();
  cos.resize(positions.size() * half);
  sin.resize(positions.size() * half);
  for (size_t t = 0; t < positions.size(); ++t)
    for (size_t i = 0; i < half; ++i) {
      const double a = double(positions[t]) * f.inv_freq[i];
      cos[t * half + i] = f.attention_factor * std::cos(a);
      sin[t * half + i] = f.attention_factor * std::sin(a);
    }
}

}  // namespace lct
