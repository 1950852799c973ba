// Attention test cases shared by the emulated kernel test and the GPU test: shapes (GQA ratios
// 1/2/4, head dims 16..128, lengths that are not multiples of the 64-row tile), position layouts
// (causal, keys all in the past, zigzag ring chunks, shuffled, rows that see no key; packed
// documents: document starts per sequence, and a doc_zigzag ring hop with positions per sequence),
// random bf16 inputs, and the cpu backend's blockwise attention in double as the reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "ops/cpu/attention.h"

namespace lct::test {

enum class PosLayout { Causal, KeysInPast, Zigzag, Shuffled, SomeRowsEmpty, Documents, DocZigzagHop, DocZigzagOwn };

// Document masking: positions and document starts one row per sequence (AttnMask [B, T]).
inline bool per_row(PosLayout p) {
  return p == PosLayout::Documents || p == PosLayout::DocZigzagHop || p == PosLayout::DocZigzagOwn;
}

struct AttnCase {
  std::string name;
  int64_t B, Tq, Tk, Hq, Hkv, D;
  PosLayout pos;
};

inline void PrintTo(const AttnCase& c, std::ostream* os) { *os << c.name; }

inline std::vector<AttnCase> attention_cases() {
  return {
      {"causal_d64_gqa1", 1, 130, 130, 2, 2, 64, PosLayout::Causal},
      {"causal_d128_gqa2", 1, 100, 100, 4, 2, 128, PosLayout::Causal},
      {"causal_d128_gqa4_b2", 2, 70, 70, 4, 1, 128, PosLayout::Causal},
      {"past_d64_gqa4", 1, 65, 90, 4, 1, 64, PosLayout::KeysInPast},
      {"zigzag_d128_gqa2", 1, 96, 96, 4, 2, 128, PosLayout::Zigzag},
      {"shuffled_d32_gqa2", 2, 77, 150, 2, 1, 32, PosLayout::Shuffled},
      {"empty_rows_d16_gqa1", 1, 80, 50, 2, 2, 16, PosLayout::SomeRowsEmpty},
      {"tiny_d64", 1, 1, 3, 1, 1, 64, PosLayout::Causal},
      {"documents_d64_gqa2_b2", 2, 150, 150, 4, 2, 64, PosLayout::Documents},
      {"documents_d16_gqa1", 1, 200, 200, 2, 2, 16, PosLayout::Documents},
      {"doczigzag_hop_d128_gqa4_b2", 2, 96, 96, 4, 1, 128, PosLayout::DocZigzagHop},
      {"doczigzag_own_d32_gqa2_b2", 2, 96, 96, 2, 1, 32, PosLayout::DocZigzagOwn},
  };
}

// Packed documents of random lengths (1..60) per sequence: where each of T tokens' document begins.
inline std::vector<int32_t> random_doc_starts(int64_t T, Rng& rng) {
  std::vector<int32_t> start(static_cast<size_t>(T));
  int32_t begin = 0, left = 0;
  for (int32_t t = 0; t < int32_t(T); ++t) {
    if (left == 0) begin = t, left = 1 + int32_t(rng.below(60));
    start[size_t(t)] = begin;
    --left;
  }
  return start;
}

// A doc_zigzag layout of 2 * Tq slots over cp = 2 (documents padded to multiples of 4, pieces r
// and 3 - r to rank r): rank 0's slots as queries, rank `key_rank`'s as keys, per sequence.
inline void doc_zigzag_positions(int64_t B, int64_t Tq, int key_rank, Rng& rng, std::vector<int32_t>& qpos,
                                 std::vector<int32_t>& kpos, std::vector<int32_t>& qstart) {
  const int64_t T = 2 * Tq;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> start(static_cast<size_t>(T));
    std::vector<int32_t> mine[2];
    int64_t slot = 0;
    while (slot < T) {
      const int64_t seg = std::min<int64_t>((1 + int64_t(rng.below(40)) + 3) / 4 * 4, T - slot), c = seg / 4;
      for (int64_t i = 0; i < seg; ++i) start[size_t(slot + i)] = int32_t(slot);
      for (int r = 0; r < 2; ++r)
        for (int64_t piece : {int64_t(r), int64_t(3 - r)})
          for (int64_t i = 0; i < c; ++i) mine[r].push_back(int32_t(slot + piece * c + i));
      slot += seg;
    }
    for (int32_t x : mine[0]) qpos.push_back(x), qstart.push_back(start[size_t(x)]);
    for (int32_t x : mine[key_rank]) kpos.push_back(x);
  }
}

inline void make_positions(const AttnCase& c, uint64_t seed, std::vector<int32_t>& qpos, std::vector<int32_t>& kpos,
                           std::vector<int32_t>& qstart) {
  qpos.resize(size_t(c.Tq));
  kpos.resize(size_t(c.Tk));
  qstart.clear();
  switch (c.pos) {
    case PosLayout::Documents: {
      Rng rng(seed, 91);
      qpos.clear();
      kpos.clear();
      for (int64_t b = 0; b < c.B; ++b) {
        const std::vector<int32_t> st = random_doc_starts(c.Tq, rng);
        for (int32_t t = 0; t < int32_t(c.Tq); ++t) qpos.push_back(t), kpos.push_back(t), qstart.push_back(st[size_t(t)]);
      }
      break;
    }
    case PosLayout::DocZigzagHop:
    case PosLayout::DocZigzagOwn: {
      Rng rng(seed, 92);
      qpos.clear();
      kpos.clear();
      doc_zigzag_positions(c.B, c.Tq, c.pos == PosLayout::DocZigzagHop ? 1 : 0, rng, qpos, kpos, qstart);
      break;
    }
    case PosLayout::Causal:
      std::iota(qpos.begin(), qpos.end(), 0);
      std::iota(kpos.begin(), kpos.end(), 0);
      break;
    case PosLayout::KeysInPast:
      std::iota(kpos.begin(), kpos.end(), 0);
      std::iota(qpos.begin(), qpos.end(), int32_t(c.Tk));
      break;
    case PosLayout::Zigzag: {  // ring of cp = 2, chunk size T/2: queries hold chunks 0 and 3, keys 1 and 2
      const int32_t ch = int32_t(c.Tq / 2);
      for (int32_t i = 0; i < int32_t(c.Tq); ++i) qpos[size_t(i)] = i < ch ? i : 3 * ch + (i - ch);
      for (int32_t i = 0; i < int32_t(c.Tk); ++i) kpos[size_t(i)] = ch + i;
      break;
    }
    case PosLayout::Shuffled: {
      Rng rng(seed, 77);
      const int32_t T = int32_t(std::max(c.Tq, c.Tk));
      std::vector<int32_t> all(static_cast<size_t>(T));
      std::iota(all.begin(), all.end(), 0);
      for (int32_t i = T - 1; i > 0; --i) std::swap(all[size_t(i)], all[size_t(rng.below(uint64_t(i) + 1))]);
      for (size_t i = 0; i < qpos.size(); ++i) qpos[i] = all[i];
      for (int32_t i = T - 1; i > 0; --i) std::swap(all[size_t(i)], all[size_t(rng.below(uint64_t(i) + 1))]);
      for (size_t i = 0; i < kpos.size(); ++i) kpos[i] = all[i];
      break;
    }
    case PosLayout::SomeRowsEmpty:
      std::iota(qpos.begin(), qpos.end(), 0);
      std::iota(kpos.begin(), kpos.end(), 20);  // queries at positions < 20 see no key
      break;
  }
}

// Random values already rounded to bf16 (both backends see the same numbers).
inline std::vector<float> random_bf16_values(size_t n, Rng& rng, double scale) {
  std::vector<float> v(n);
  for (auto& x : v) x = bf16_to_float(float_to_bf16(float(rng.normal() * scale)));
  return v;
}
inline std::vector<uint16_t> to_bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = float_to_bf16(v[i]);
  return b;
}

struct AttnData {
  std::vector<float> q, k, v, dout;  // bf16-exact values
  std::vector<int32_t> qpos, kpos;   // [Tq], [Tk], or [B, T] for the document layouts
  std::vector<int32_t> qstart;       // [B, Tq] document starts, or empty
  std::vector<float> dq0, dk0, dv0;  // initial gradient accumulators (backward adds to them)
};

inline AttnData make_attn_data(const AttnCase& c, uint64_t seed) {
  Rng rng(seed);
  AttnData d;
  d.q = random_bf16_values(size_t(c.B * c.Tq * c.Hq * c.D), rng, 1.0);
  d.k = random_bf16_values(size_t(c.B * c.Tk * c.Hkv * c.D), rng, 1.0);
  d.v = random_bf16_values(size_t(c.B * c.Tk * c.Hkv * c.D), rng, 1.0);
  d.dout = random_bf16_values(d.q.size(), rng, 1.0);
  d.dq0 = random_bf16_values(d.q.size(), rng, 0.1);
  d.dk0 = random_bf16_values(d.k.size(), rng, 0.1);
  d.dv0 = random_bf16_values(d.v.size(), rng, 0.1);
  make_positions(c, seed, d.qpos, d.kpos, d.qstart);
  return d;
}

struct AttnRef {
  std::vector<double> out, lse, dq, dk, dv;
};

// The cpu backend's kernels in double. dout is used as given (bf16 values); the backward uses the
// reference's own out/lse.
inline AttnRef attention_reference(const AttnCase& c, const AttnData& d) {
  auto dbl = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  const std::vector<double> q = dbl(d.q), k = dbl(d.k), v = dbl(d.v), dout = dbl(d.dout);
  AttnRef r;
  r.out.assign(q.size(), 0.0);
  r.lse.assign(size_t(c.B * c.Hq * c.Tq), 0.0);
  const cpu::AttnShape s{c.B, c.Tq, c.Tk, c.Hq, c.Hkv, c.D};
  cpu::AttnPos pos{d.qpos.data(), d.kpos.data(), d.qstart.empty() ? nullptr : d.qstart.data(),
                   per_row(c.pos) ? c.Tq : 0, per_row(c.pos) ? c.Tk : 0};
  cpu::attention_forward(r.out.data(), r.lse.data(), q.data(), k.data(), v.data(), pos, s, 32);
  r.dq = dbl(d.dq0);
  r.dk = dbl(d.dk0);
  r.dv = dbl(d.dv0);
  cpu::attention_backward(r.dq.data(), r.dk.data(), r.dv.data(), dout.data(), q.data(), k.data(), v.data(), pos,
                          r.out.data(), r.lse.data(), s, 32);
  return r;
}

// ||a - b|| / ||b||.
template <class A>
double rel_err(const std::vector<A>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const double x = double(a[i]) - b[i];
    num += x * x;
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Largest |a - b| over finite reference values; -1 if the -inf pattern differs (or a NaN shows up).
template <class A>
double lse_max_err(const std::vector<A>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    const bool ref_inf = std::isinf(b[i]);
    const bool got_inf = std::isinf(double(a[i])) && double(a[i]) < 0;
    if (ref_inf != got_inf || std::isnan(double(a[i]))) return -1;
    if (!ref_inf) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  }
  return m;
}

// Tolerances (docs/cuda.md): bf16 P and dS in the tensor-core products.
constexpr double kAttnOutTol = 1e-2, kAttnLseTol = 2e-3, kAttnGradTol = 2e-2;

}  // namespace lct::test
