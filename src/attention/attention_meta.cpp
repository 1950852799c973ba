#include "attention/attention_meta.h"

#include <algorithm>
#include <limits>

#include "attention/sharding.h"
#include "core/error.h"

namespace lct {

CpSharding parse_cp_sharding(const std::string& name) {
  if (name == "contiguous") return CpSharding::Contiguous;
  if (name == "zigzag") return CpSharding::Zigzag;
  if (name == "doc_zigzag") return CpSharding::DocZigzag;
  throw InputError(str("parallel.cp_sharding = ", name, ": use contiguous, zigzag or doc_zigzag"));
}

const char* cp_sharding_name(CpSharding s) {
  switch (s) {
    case CpSharding::Contiguous: return "contiguous";
    case CpSharding::Zigzag: return "zigzag";
    case CpSharding::DocZigzag: return "doc_zigzag";
  }
  return "?";
}

namespace {

// Concatenates per-slot values of ring position r over the rows (or row 0 only).
std::vector<int32_t> gather_rows(const AttentionMeta& m, int r, bool all_rows,
                                 const std::vector<int32_t> SequenceLayout::*field) {
  std::vector<int32_t> out;
  out.reserve(size_t((all_rows ? m.B() : 1) * m.T_local()));
  for (int64_t b = 0; b < (all_rows ? m.B() : 1); ++b) {
    const SequenceLayout& row = m.rows[size_t(b)];
    for (int32_t s : row.slots[size_t(r)]) out.push_back(field ? (row.*field)[size_t(s)] : s);
  }
  return out;
}

// Zigzag or contiguous: slots are the token indices, the same in every row.
void shard_by_sequence(SequenceLayout& row, int64_t T, int cp, bool zigzag) {
  row.slots.resize(size_t(cp));
  for (int r = 0; r < cp; ++r) row.slots[size_t(r)] = shard_positions(T, cp, r, zigzag);
  row.token.resize(size_t(T));
  for (int64_t t = 0; t < T; ++t) row.token[size_t(t)] = int32_t(t);
}

// doc_zigzag: each document padded to a multiple of 2cp slots, pieces r and 2cp-1-r to rank r.
void shard_by_document(SequenceLayout& row, const std::vector<int32_t>& begins, int64_t T, int cp,
                       bool reset_position_ids) {
  const int64_t unit = 2 * int64_t(cp);
  row.slots.assign(size_t(cp), {});
  row.token.assign(size_t(T), -1);
  row.doc_start.assign(size_t(T), 0);
  row.rope_pos.assign(size_t(T), 0);
  int64_t slot = 0;
  for (size_t d = 0; d < begins.size() && slot < T; ++d) {
    const int64_t b = begins[d], e = d + 1 < begins.size() ? begins[d + 1] : T;
    const int64_t len = e - b, seg = std::min((len + unit - 1) / unit * unit, T - slot);  // T - slot: the tail is cut
    for (int64_t i = 0; i < seg; ++i) {
      const size_t s = size_t(slot + i);
      row.doc_start[s] = int32_t(slot);
      row.token[s] = i < len ? int32_t(b + i) : -1;
      row.rope_pos[s] = int32_t(reset_position_ids ? i : b + i);
    }
    const int64_t c = seg / unit;
    for (int r = 0; r < cp; ++r) {
      auto& mine = row.slots[size_t(r)];
      for (int64_t piece : {int64_t(r), unit - 1 - r})
        for (int64_t i = 0; i < c; ++i) mine.push_back(int32_t(slot + piece * c + i));
    }
    slot += seg;
  }
  LCT_CHECK(slot == T, "doc_zigzag layout filled ", slot, " of ", T, " slots");
}

}  // namespace

std::vector<int32_t> AttentionMeta::positions(int r) const { return gather_rows(*this, r, per_row(), nullptr); }

std::vector<int32_t> AttentionMeta::doc_starts(int r) const {
  if (!doc_mask) return {};
  return gather_rows(*this, r, true, &SequenceLayout::doc_start);
}

std::vector<int32_t> AttentionMeta::rope_positions(int r) const {
  return gather_rows(*this, r, true, &SequenceLayout::rope_pos);
}

int64_t AttentionMeta::visible_pairs(int qr, int kr) const {
  int64_t n = 0;
  std::vector<int32_t> keys;
  for (const SequenceLayout& row : rows) {
    keys = row.slots[size_t(kr)];
    std::sort(keys.begin(), keys.end());
    for (int32_t q : row.slots[size_t(qr)]) {
      const int32_t lo = doc_mask ? row.doc_start[size_t(q)] : std::numeric_limits<int32_t>::min();
      n += std::upper_bound(keys.begin(), keys.end(), q) - std::lower_bound(keys.begin(), keys.end(), lo);
    }
  }
  return n;
}

std::string AttentionMeta::check() const {
  if (cp < 1 || T % cp != 0) return str("T ", T, " cp ", cp);
  for (const SequenceLayout& row : rows) {
    if (int64_t(row.doc_start.size()) != T || int64_t(row.rope_pos.size()) != T || int64_t(row.token.size()) != T ||
        int64_t(row.slots.size()) != cp)
      return "row sizes";
    std::vector<char> seen(size_t(T), 0);
    for (const auto& s : row.slots) {
      if (int64_t(s.size()) != T_local()) return "a ring position holds the wrong number of slots";
      for (int32_t x : s) {
        if (x < 0 || x >= T || seen[size_t(x)]) return str("slot ", x, " missing or held twice");
        seen[size_t(x)] = 1;
      }
    }
    for (int64_t t = 0; t < T; ++t)
      if (row.doc_start[size_t(t)] > t) return str("slot ", t, " starts its document after itself");
  }
  return "";
}

AttentionMeta merge_a2a(const AttentionMeta& m, int U) {
  LCT_CHECK(U >= 1 && m.cp % U == 0, "all-to-all size ", U, " does not divide the layout's cp ", m.cp);
  if (U == 1) return m;
  AttentionMeta out = m;
  out.cp = m.cp / U;
  for (SequenceLayout& row : out.rows) {
    std::vector<std::vector<int32_t>> merged(size_t(out.cp));
    for (int r = 0; r < out.cp; ++r)
      for (int u = 0; u < U; ++u) {
        const std::vector<int32_t>& part = row.slots[size_t(U * r + u)];
        merged[size_t(r)].insert(merged[size_t(r)].end(), part.begin(), part.end());
      }
    row.slots = std::move(merged);
  }
  // Rows whose slot lists were equal stay equal (the same concatenation); rows that differed
  // (doc_zigzag) still do.
  return out;
}

AttentionMeta plain_meta(int64_t B, int64_t T, int cp, CpSharding sharding) {
  return document_meta(std::vector<std::vector<int32_t>>(size_t(B), std::vector<int32_t>{0}), T, cp,
                       sharding == CpSharding::DocZigzag ? CpSharding::Zigzag : sharding, false, false);
}

AttentionMeta document_meta(const std::vector<std::vector<int32_t>>& doc_begins, int64_t T, int cp,
                            CpSharding sharding, bool reset_attention_mask, bool reset_position_ids) {
  if (sharding == CpSharding::DocZigzag && !reset_attention_mask)
    throw InputError("parallel.cp_sharding = doc_zigzag needs data.reset_attention_mask = true (its padding slots "
                     "would be visible to the next document otherwise)");
  AttentionMeta m;
  m.T = T;
  m.cp = cp;
  m.doc_mask = reset_attention_mask;
  m.slots_differ = sharding == CpSharding::DocZigzag && cp > 1;
  m.rows.resize(doc_begins.size());
  for (size_t b = 0; b < doc_begins.size(); ++b) {
    const std::vector<int32_t>& begins = doc_begins[b];
    LCT_CHECK(!begins.empty() && begins[0] == 0, "documents must begin at token 0");
    SequenceLayout& row = m.rows[b];
    if (sharding == CpSharding::DocZigzag) {
      shard_by_document(row, begins, T, cp, reset_position_ids);
      continue;
    }
    shard_by_sequence(row, T, cp, sharding == CpSharding::Zigzag);
    row.doc_start.assign(size_t(T), 0);
    row.rope_pos.resize(size_t(T));
    size_t d = 0;
    for (int64_t t = 0; t < T; ++t) {
      while (d + 1 < begins.size() && begins[d + 1] <= t) ++d;
      const int32_t begin = begins[d];
      if (reset_attention_mask) row.doc_start[size_t(t)] = begin;
      row.rope_pos[size_t(t)] = int32_t(reset_position_ids ? t - begin : t);
    }
  }
  return m;
}

std::vector<int32_t> document_begins(const int32_t* tokens, int64_t T, int32_t eod, int32_t bos) {
  std::vector<int32_t> begins{0};
  for (int64_t i = 1; i < T; ++i)
    if ((eod >= 0 && tokens[i - 1] == eod) || (bos >= 0 && tokens[i] == bos)) begins.push_back(int32_t(i));
  return begins;
}

}  // namespace lct
