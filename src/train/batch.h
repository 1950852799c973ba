// From a dp replica's samples to this rank's micro-batches: each sequence is cut by the cp
// sharding and targets under loss mask 0 become ignored (-1). With packed documents
// (data.reset_attention_mask / reset_position_ids / eod_mask_loss, parallel.cp_sharding =
// doc_zigzag) every micro-batch carries its attention descriptor (attention/attention_meta.h),
// built from the whole sample on every cp rank alike.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention_meta.h"
#include "data/loader.h"
#include "model/llama.h"

namespace lct {

struct Config;
struct ParallelContext;

// How this rank cuts samples: its place in the ring, the sharding, the document flags.
struct BatchLayout {
  int64_t seq_len = 0;
  int cp = 1, cp_rank = 0;
  CpSharding sharding = CpSharding::Zigzag;
  bool reset_attention_mask = false, reset_position_ids = false, eod_mask_loss = false;
  int32_t eod = -1, bos = -1;  // where documents end / begin (-1 = unused)
  // Whether micro-batches carry their own descriptor (else: the model's plain layout).
  bool documents() const {
    return reset_attention_mask || reset_position_ids || eod_mask_loss || sharding == CpSharding::DocZigzag;
  }
};

// The deck's layout for this rank; eod is the loader's resolved end-of-document token.
// InputError when a document flag is set but neither eod nor data.bos_token names a document token.
BatchLayout batch_layout(const Config& c, const ParallelContext& ctx, int32_t eod);

// samples[first, first + B) -> B sequences x seq_len / cp local tokens. Padding slots
// (doc_zigzag) get token 0 and no target; eod_mask_loss drops the target of each document's last
// token (Megatron: where the input is the EOD; with bos_token: where the target is the next BOS).
MicroBatch make_micro_batch(const std::vector<Sample>& samples, size_t first, int64_t B, const BatchLayout& L);

// Index in its sample of each local token of mb ([B * T_local], -1 for padding): what
// position-bucketed validation reports by.
std::vector<int32_t> token_indices(const MicroBatch& mb, const BatchLayout& L);

// Targets that count in the loss (>= 0).
int64_t count_targets(const MicroBatch& mb);

}  // namespace lct
