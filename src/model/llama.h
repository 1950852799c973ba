// The Llama-3 architecture written once against the op interface: token embedding; n_layers x
// (RMSNorm -> GQA attention with RoPE -> residual; RMSNorm -> SwiGLU MLP -> residual); final
// RMSNorm; LM head (optionally tied) fused with cross-entropy. HF transformers' conventions
// (weight names, rotate-half RoPE, eps inside the square root) so HF weights load as they are.
//
// Parallelism: attention runs as context-parallel attention over the cp ranks (this rank holds B
// sequences x T/cp tokens: the zigzag chunks of its sharding index cp_rank): ring attention, or
// all-to-all over U ranks x ring over cp / U (attention/context_attention.h); linears are Megatron tensor-parallel over tp (q/k/v/gate/up
// column-parallel, o/down row-parallel, embedding and LM head vocabulary-parallel); with sequence
// parallelism the residual stream and norms hold N/tp tokens, with all-gather before and
// reduce-scatter after each tensor-parallel block.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "attention/context_attention.h"
#include "deck/config.h"
#include "model/layer_inputs.h"
#include "model/param_store.h"
#include "model/params.h"
#include "model/rope.h"
#include "ops/ops.h"
#include "ops/owned_buffers.h"
#include "parallel/comm.h"

namespace lct {

// This rank's share of one micro-batch: B sequences x T_local tokens, in (sequence, local token)
// order; targets < 0 are excluded from the loss. `meta` says which slots the tokens are, how
// attention masks them and their RoPE positions; empty = the model's plain layout (positions()).
struct MicroBatch {
  std::vector<int32_t> inputs;
  std::vector<int32_t> targets;
  AttentionMeta meta;
};

struct ModelShape {
  int64_t micro_batch = 1, seq_len = 0;  // full sequence length T
  int tp = 1, tp_rank = 0, cp = 1, cp_rank = 0;  // cp_rank: the sharding index (a2a_rank + U * ring_rank)
  int cp_a2a = 1;  // U: the all-to-all group of parallel.cp_comm_type = a2a | a2a+p2p (1 = ring only)
  bool sequence_parallel = true;
  bool zigzag = true;
  bool recompute = false;
  int attention_tile = 64;
  int64_t unit_padding = 1;  // each unit of the flat buffers is rounded up to a multiple of this (ZeRO: dp x cp)
  bool offload_layer_inputs = false;  // train.offload = activations: LayerInputs on the host between passes
};

struct ParallelContext;
// The shape a training run gives this rank's model: the deck's batch, length, recompute and
// attention tile, and the rank's place in the tp / cp groups (ZeRO pads each unit to dp x cp).
ModelShape training_shape(const Config& c, const ParallelContext& ctx);

class Llama {
 public:
  // tp_comm may be null when tp is 1. cp_comm: the ring of context parallelism (ParallelContext::
  // ring_comm(): the cp group when shape.cp_a2a = 1), null when it has one rank; a2a_comm: the
  // all-to-all group (ParallelContext::a2a_comm()), needed when shape.cp_a2a > 1. `store` holds
  // the parameters and gradients (its table must be ParamTable::build(m, tp, tp_rank,
  // shape.unit_padding)); null: the model owns them, all resident.
  Llama(const ModelConfig& m, const RopeConfig& r, const ModelShape& shape, Ops& ops, Comm* tp_comm, Comm* cp_comm,
        ParamStore* store = nullptr, Comm* a2a_comm = nullptr);
  ~Llama();
  Llama(const Llama&) = delete;
  Llama& operator=(const Llama&) = delete;

  // Sum of the cross-entropy over this rank's non-ignored targets (the same on every tp rank).
  double forward(const MicroBatch& mb);
  // forward, then grads += d(scale * loss_sum) / d params. Returns the loss sum.
  double forward_backward(const MicroBatch& mb, double scale);

  const ParamTable& table() const { return table_; }
  ParamStore& store() { return *store_; }
  // The whole flat buffers, when the store keeps them resident (not under ZeRO 3 / 2).
  ParamBuffer& params();
  ParamBuffer& grads();
  int64_t flat_capacity() const { return table_.total; }  // unit padding included; padding stays zero
  const ModelConfig& config() const { return cfg_; }
  const ModelShape& shape() const { return shape_; }
  int64_t tokens_local() const { return N_; }          // B * T / cp
  const std::vector<int32_t>& positions() const { return pos_host_; }  // this rank's global positions
  RingStats& ring_stats() { return attn_->stats(); }

  // Per-token cross-entropy of the last forward() (this rank's N tokens, in MicroBatch order;
  // NaN where the target was ignored). Downloads N values: for evaluation, not for training.
  std::vector<double> token_losses();

  // The final hidden states (after the last RMSNorm) of the whole local token set [N, C], valid
  // after forward(); and the LM head weights slice, for evaluation code that needs logits.
  Tensor final_hidden() const { return lnf_full_; }
  // lm_head(): the vocabulary rows of this rank's slice (logits = hidden x lm_head^T are ids
  // vocab_begin + i); lm_head_padded(): with the zero padding rows, for aligned GEMMs. Resident
  // parameters only.
  Tensor lm_head() const { return lm_head_padded().slice(0, table_.vocab_valid); }
  Tensor lm_head_padded() const;
  Ops& ops() { return ops_; }

 private:
  struct LayerActs {
    Tensor ln1, rstd1, q, kv, att, att_act, lse, x_mid, ln2, rstd2, gate, up, h;
  };
  void alloc_layer_acts(LayerActs& a);
  void upload_batch(const MicroBatch& mb);
  // RoPE tables for this rank's tokens: positions [T_local] (shared by the rows) or [B, T_local].
  void set_rope(const std::vector<int32_t>& positions);
  // keep_head: the final norm and LM head stay acquired for the backward that follows.
  double forward_pass(bool keep_head);
  // Writes the layer's output to `out`; an empty `out` (the recompute in backward) skips that add.
  void layer_forward(int l, LayerActs& a, const LayerWeights& w, const Tensor& x, Tensor out);
  void layer_backward(int l, LayerActs& a, Tensor dres);
  int lm_head_unit() const { return cfg_.tie_embeddings ? 0 : table_.head_unit(); }
  Tensor view(int spec, void* unit_base, DType t) const { return unit_view(table_, spec, unit_base, t); }
  // Tensor-parallel helpers: gather [Ns, C] -> [N, C]; reduce a partial [N, C] -> [Ns, C].
  Tensor gather(const Tensor& local);
  Tensor reduce(Tensor partial, Tensor out_local);
  Tensor as_act(const Tensor& acc_tensor, const Tensor& act_buffer);

  ModelConfig cfg_;
  RopeConfig rope_;
  ModelShape shape_;
  Ops& ops_;
  Comm* tp_comm_;
  Comm* cp_comm_;
  bool sp_;            // sequence parallel in effect (tp > 1 and requested)
  int64_t B_, Tl_, N_, Ns_, C_, D_, Hq_, Hkv_, F_;  // local sizes (heads and F after the tp split)
  ParamTable table_;
  std::unique_ptr<ParamStore> own_store_;
  ParamStore* store_ = nullptr;
  ParamBuffer params_, grads_;  // bound when resident
  int embed_i_ = 0, norm_i_ = 0, head_i_ = 0;  // spec indices (head_i_ = embed_i_ when tied)
  std::unique_ptr<ContextAttention> attn_;
  std::vector<int32_t> pos_host_;
  RopeFrequencies freqs_;
  bool custom_meta_ = false;  // the last micro-batch brought its own layout
  OwnedBuffers buffers_{ops_};

  Tensor tokens_, targets_, cos_all_, sin_all_, cos_, sin_;  // cos_/sin_: the rows of *_all_ in use
  std::unique_ptr<LayerInputs> inputs_;  // residual stream entering each layer, and the final one [Ns, C]
  std::vector<LayerActs> acts_;      // per layer (one shared entry under recompute)
  Tensor lnf_, rstdf_, lnf_full_, stats_, stats_all_, lse_loss_;
  Tensor gather_buf_, partial_, reduced_;
  Tensor dres_, dh_, dgate_, dup_, dpartial_, datt_, dq_, dkv_, dq_act_, dkv_act_, demb_;
};

}  // namespace lct
