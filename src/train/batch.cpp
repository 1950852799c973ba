#include "train/batch.h"

#include "attention/sharding.h"
#include "core/error.h"
#include "deck/config.h"
#include "parallel/context.h"

namespace lct {

BatchLayout batch_layout(const Config& c, const ParallelContext& ctx, int32_t eod) {
  BatchLayout L;
  L.seq_len = c.train.seq_len;
  L.cp = ctx.layout.cp;
  L.cp_rank = ctx.me().cp_rank;
  L.sharding = parse_cp_sharding(c.parallel.cp_sharding);
  L.reset_attention_mask = c.data.reset_attention_mask;
  L.reset_position_ids = c.data.reset_position_ids;
  L.eod_mask_loss = c.data.eod_mask_loss;
  L.eod = eod;
  L.bos = int32_t(c.data.bos_token);
  if (L.documents() && L.eod < 0 && L.bos < 0)
    throw InputError(str(c.data.reset_attention_mask ? "data.reset_attention_mask"
                         : c.data.reset_position_ids ? "data.reset_position_ids"
                         : c.data.eod_mask_loss     ? "data.eod_mask_loss"
                                                    : "parallel.cp_sharding = doc_zigzag",
                         " = true needs to know where documents are, but no document token is set: set "
                         "data.eod_token (the token that ends each document; the data files name none) or "
                         "data.bos_token (the token that begins each document)"));
  return L;
}

namespace {

// Whether input token i is the last of its document: it is the EOD, or the next token is a BOS.
bool ends_document(const std::vector<int32_t>& tokens, size_t i, const BatchLayout& L) {
  return (L.eod >= 0 && tokens[i] == L.eod) || (L.bos >= 0 && tokens[i + 1] == L.bos);
}

}  // namespace

MicroBatch make_micro_batch(const std::vector<Sample>& samples, size_t first, int64_t B, const BatchLayout& L) {
  LCT_CHECK(first + size_t(B) <= samples.size(), "micro-batch beyond the step's samples");
  const int64_t T = L.seq_len, Tl = T / L.cp;
  for (int64_t b = 0; b < B; ++b)
    LCT_CHECK(int64_t(samples[first + size_t(b)].tokens.size()) == T + 1, "a sample of ",
              samples[first + size_t(b)].tokens.size(), " tokens for seq_len ", T);
  MicroBatch mb;
  std::vector<int32_t> plain;
  if (L.documents()) {
    LCT_CHECK(L.eod >= 0 || L.bos >= 0, "document flags without a document token");
    std::vector<std::vector<int32_t>> begins;
    for (int64_t b = 0; b < B; ++b)
      begins.push_back(document_begins(samples[first + size_t(b)].tokens.data(), T, L.eod, L.bos));
    mb.meta = document_meta(begins, T, L.cp, L.sharding, L.reset_attention_mask, L.reset_position_ids);
  } else {
    plain = shard_positions(T, L.cp, L.cp_rank, L.sharding != CpSharding::Contiguous);
  }
  mb.inputs.reserve(size_t(B * Tl));
  mb.targets.reserve(size_t(B * Tl));
  for (int64_t b = 0; b < B; ++b) {
    const Sample& s = samples[first + size_t(b)];
    const std::vector<int32_t>& slots = mb.meta.empty() ? plain : mb.meta.rows[size_t(b)].slots[size_t(L.cp_rank)];
    for (int32_t slot : slots) {
      const int32_t p = mb.meta.empty() ? slot : mb.meta.rows[size_t(b)].token[size_t(slot)];
      if (p < 0) {  // padding (doc_zigzag)
        mb.inputs.push_back(0);
        mb.targets.push_back(-1);
        continue;
      }
      mb.inputs.push_back(s.tokens[size_t(p)]);
      bool counts = s.loss_mask.empty() || s.loss_mask[size_t(p) + 1] != 0;
      if (L.eod_mask_loss && ends_document(s.tokens, size_t(p), L)) counts = false;
      mb.targets.push_back(counts ? s.tokens[size_t(p) + 1] : -1);
    }
  }
  return mb;
}

std::vector<int32_t> token_indices(const MicroBatch& mb, const BatchLayout& L) {
  const int64_t Tl = L.seq_len / L.cp, B = int64_t(mb.inputs.size()) / Tl;
  std::vector<int32_t> idx;
  idx.reserve(mb.inputs.size());
  if (mb.meta.empty()) {
    const std::vector<int32_t> plain = shard_positions(L.seq_len, L.cp, L.cp_rank, L.sharding != CpSharding::Contiguous);
    for (int64_t b = 0; b < B; ++b) idx.insert(idx.end(), plain.begin(), plain.end());
    return idx;
  }
  for (const SequenceLayout& row : mb.meta.rows)
    for (int32_t slot : row.slots[size_t(L.cp_rank)]) idx.push_back(row.token[size_t(slot)]);
  return idx;
}

int64_t count_targets(const MicroBatch& mb) {
  int64_t n = 0;
  for (int32_t t : mb.targets) n += t >= 0;
  return n;
}

}  // namespace lct
