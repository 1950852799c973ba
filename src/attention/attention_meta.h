// The per-call attention descriptor: for one micro-batch of B sequences over a cp ring, which
// slots each ring position holds, where each slot's document starts and its RoPE position.
//
// A "slot" is a place in the packed sample: the token's index in the sequence, except under
// parallel.cp_sharding = doc_zigzag, where every document is padded to a multiple of 2 x cp
// slots (Transformer Engine's THD layout) and split into 2 x cp pieces, rank r holding pieces r
// and 2cp-1-r of EVERY document. Attention masks by slot (ops.h AttnMask):
//   key slot k is visible to query slot q  iff  doc_start[q] <= k <= q
// (doc_start = 0 everywhere without data.reset_attention_mask: plain causal attention).
//
// Built once per micro-batch (train/batch.cpp) from the documents of each sample; every cp rank
// reads the whole sample, so every rank builds the same descriptor and no data travels. Ring
// attention takes it (its queries' slots and document starts, every ring position's key slots);
// the model takes its RoPE positions. The all-to-all (usp) wrapper and decoding ([gen]) are meant
// to take the same struct: a cp KV cache is the slots a rank holds, with their positions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lct {

enum class CpSharding {
  Contiguous,  // ring position r holds tokens [r T/cp, (r+1) T/cp)
  Zigzag,      // the sequence in 2cp chunks, r holds chunks r and 2cp-1-r (causal load balance)
  DocZigzag,   // every document padded to a multiple of 2cp and zigzagged on its own
};
CpSharding parse_cp_sharding(const std::string& name);  // contiguous | zigzag | doc_zigzag
const char* cp_sharding_name(CpSharding s);

// One sequence of the micro-batch.
struct SequenceLayout {
  std::vector<int32_t> doc_start;  // [T] per slot: first slot of its document (0 without document masking)
  std::vector<int32_t> rope_pos;   // [T] per slot: RoPE position
  std::vector<int32_t> token;      // [T] per slot: index of its input token in the sample, -1 = padding
  std::vector<std::vector<int32_t>> slots;  // [cp][T / cp]: the slots ring position r holds, in local order
};

struct AttentionMeta {
  int64_t T = 0;          // slots per sequence (train.seq_len)
  int cp = 1;
  bool doc_mask = false;  // keys are also masked by document (AttnMask q_start)
  bool slots_differ = false;  // the rows hold different slots (doc_zigzag)
  std::vector<SequenceLayout> rows;

  int64_t B() const { return int64_t(rows.size()); }
  int64_t T_local() const { return T / cp; }
  bool empty() const { return rows.empty(); }
  // Whether the positions handed to the kernels need one row per sequence: document starts, or
  // rows whose slots differ (doc_zigzag). Otherwise one row [T_local] serves the whole batch.
  bool per_row() const { return doc_mask || slots_differ; }
  // What ring position r's attention uses, [B, T_local] when per_row() else [T_local]:
  std::vector<int32_t> positions(int r) const;   // its slots (queries, and keys when its block travels)
  std::vector<int32_t> doc_starts(int r) const;  // its queries' document starts (empty without doc_mask)
  std::vector<int32_t> rope_positions(int r) const;  // always [B, T_local]
  // (query, key) pairs that attention computes for ring position qr's queries against the keys
  // of ring position kr, summed over the rows (no heads): 0 means the hop can be skipped.
  int64_t visible_pairs(int qr, int kr) const;
  std::string check() const;  // "" when consistent, else what is wrong (tests)
};

// The layout the R ring of all-to-all context parallelism sees (parallel.cp_comm_type = a2a,
// a2a+p2p): `m` over cp = U x R sharding indices becomes a layout over R ring positions, position r
// holding the slots of sharding indices U r + 0 .. U r + U - 1 concatenated in that (a2a-rank)
// order, in every row: after the all-to-all a rank holds those U shards' tokens in that order.
// Document starts, RoPE positions and tokens are per slot and stay as they are, so plain zigzag,
// contiguous and doc_zigzag with document masks all compose. U = 1 returns m.
AttentionMeta merge_a2a(const AttentionMeta& m, int U);

// Today's layout: no documents (causal over the whole sequence), RoPE position = token index.
AttentionMeta plain_meta(int64_t B, int64_t T, int cp, CpSharding sharding);

// Packed documents. doc_begins[b]: the input-token indices where the documents of sequence b
// begin, increasing, starting with 0. reset_attention_mask: attention stays inside a document;
// reset_position_ids: RoPE positions restart at 0 with each document. doc_zigzag needs
// reset_attention_mask (padding slots would be visible otherwise); its padding pushes the tail of
// the sample out: tokens past slot T are not trained on (at most 2cp - 1 per document).
AttentionMeta document_meta(const std::vector<std::vector<int32_t>>& doc_begins, int64_t T, int cp,
                            CpSharding sharding, bool reset_attention_mask, bool reset_position_ids);

// Where documents begin among tokens[0, T) of a sample of T + 1 tokens: at 0, after every eod
// token and at every bos token (either may be -1 = unused).
std::vector<int32_t> document_begins(const int32_t* tokens, int64_t T, int32_t eod, int32_t bos);

}  // namespace lct
