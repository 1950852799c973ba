// Prefill and decode on the model's own weights and ops (any backend, any tp x cp layout).
//
// Prefill: the prompt is padded at its end to a multiple of 2 x cp x tp and runs through the layers
// as in training (zigzag chunks, ring attention over cp, Megatron tp with sequence parallelism):
// pads sit after every real token, so causally no real token sees them, and they never enter the
// cache. Each rank keeps the K/V of its own real tokens (KvCache). Memory per rank is one layer's
// activations for T/cp tokens plus the cache: flat in cp as training is; no T x T buffer.
//
// Decode: one token at a time, no sequence parallelism. Every rank of the replica computes the
// token's q/k/v (tp-split heads); the cp rank with the fewest cached tokens (lowest rank on ties)
// stores its K/V; each rank attends to its own shard and the (out, lse) partials are all-gathered
// over cp and merged by log-sum-exp in rank order, so every rank holds the same result.
// Logits are computed for one row only ([V_local], all-gathered over tp): never T x V.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "infer/bound_weights.h"
#include "infer/kv_cache.h"
#include "model/llama.h"
#include "model/rope.h"
#include "ops/ops.h"
#include "ops/owned_buffers.h"
#include "parallel/comm.h"

namespace lct {

struct DecoderTimes {
  double prefill_s = 0, decode_s = 0;
  int64_t decoded = 0;
  int64_t prefill_extra_peak_bytes = 0;  // backend bytes above the pre-prefill level, at the prefill's peak
};

class LlamaDecoder {
 public:
  // `model`: built and loaded; only its bound weights, config and tp slice are read (its shape's
  // tp/cp/zigzag/sequence_parallel give the layout). tp / cp may be null when 1.
  LlamaDecoder(Llama& model, const RopeConfig& rope, Ops& ops, Comm* tp, Comm* cp);
  ~LlamaDecoder();
  LlamaDecoder(const LlamaDecoder&) = delete;
  LlamaDecoder& operator=(const LlamaDecoder&) = delete;

  // Starts a sequence: runs `prompt` (ids in [0, vocab_size), at least one) and returns the logits
  // of the token that follows it (vocab_size values, the same on every rank of the replica). Room
  // is reserved for `max_new` decode() calls; RoPE sees a context of prompt + max_new tokens.
  // Collective over tp and cp.
  const std::vector<double>& prefill(const std::vector<int32_t>& prompt, int64_t max_new);
  // Appends `token` at the next position and returns the logits of the token after it.
  const std::vector<double>& decode(int32_t token);

  int64_t length() const { return len_; }           // tokens of the sequence so far
  const KvCache* cache() const { return cache_.get(); }
  const std::vector<int64_t>& cached_per_rank() const { return counts_; }  // over the cp ranks
  DecoderTimes& times() { return times_; }

 private:
  void upload_rope(Tensor cos, Tensor sin, const std::vector<int32_t>& pos);
  Tensor gather(const Tensor& local, const Tensor& full, bool sp);
  Tensor reduce(Tensor partial, Tensor out_local, bool sp);
  Tensor as_act(const Tensor& acc_tensor, const Tensor& act_buffer);
  void merge_over_cp();
  const std::vector<double>& assemble_logits();  // logits_local_ (all tp slices) -> logits_

  Llama& model_;
  RopeConfig rope_;
  Ops& ops_;
  Comm* tp_;
  Comm* cp_;
  BoundWeights weights_;
  ModelConfig cfg_;
  int tp_size_, cp_size_, cp_rank_;
  bool zigzag_, sp_;
  int64_t C_, D_, Hq_, Hkv_, F_, Vlp_;
  std::vector<int64_t> vocab_begin_, vocab_valid_;  // per tp rank
  RopeFrequencies freqs_;

  std::unique_ptr<KvCache> cache_;
  std::vector<int64_t> counts_;  // cached tokens per cp rank
  int64_t len_ = 0, max_len_ = 0;
  DecoderTimes times_;

  // One-token buffers (decode), allocated once.
  OwnedBuffers buffers_{ops_};
  Tensor tok_, qpos_, cos1_, sin1_, rope_tmp_, x_, x_mid_, ln_, rstd_, q_, k_, v_, att_b_, lse_b_, att_, lse_,
      att_act_, partial_, gate_, up_, h_, pack_, packs_, logits_local_, logits_all_, logits_f64_;
  std::vector<double> neg_inf_, logits_host_, logits_;
};

}  // namespace lct
