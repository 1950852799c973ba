// Named parameter tensors of a Llama model: HF names, full logical shapes, and how each is
// split over tensor-parallel ranks. All of a rank's parameters live in ONE flat buffer (so
// gradients reduce in one call and ZeRO shards are plain ranges); each named tensor is a view.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "deck/config.h"

namespace lct {

class Ops;

// How a tensor is split over tp ranks.
enum class Split {
  None,  // replicated (norm weights)
  Rows,  // dim 0 split: column-parallel linears (q, k, v, gate, up), vocab-parallel embedding / LM head
  Cols,  // dim 1 split: row-parallel linears (o, down)
};

struct ParamSpec {
  std::string name;   // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
  int64_t rows = 0;   // full logical shape [rows, cols]; 1-D tensors have cols == 1... see is_vector
  int64_t cols = 0;
  bool is_vector = false;  // 1-D (norm weights): shape [rows]
  Split split = Split::None;
  bool decay = true;  // weight decay applies (not to norm weights)
  int64_t local_rows = 0, local_cols = 0;  // this rank's slice (vocabulary tensors: padded rows)
  int64_t valid_rows = 0;                   // leading local rows that exist in the full tensor
  int64_t row0 = 0, col0 = 0;              // where the slice starts in the full tensor
  int64_t offset = 0;                      // element offset in the flat buffer
  int64_t local_numel() const { return local_rows * local_cols; }
  int64_t full_numel() const { return rows * cols; }
};

// The parameter table for a model shape and a tp rank, in HF order: embed_tokens, then per layer
// input_layernorm, q/k/v/o_proj, post_attention_layernorm, gate/up/down_proj, then norm, lm_head
// (absent when tied).
struct ParamTable {
  std::vector<ParamSpec> specs;
  int64_t total = 0;  // local elements in the flat buffer
  // This rank's vocabulary slice: ids [vocab_begin, vocab_begin + vocab_valid) in its first
  // vocab_valid rows, then zero padding up to vocab_local rows (a multiple of
  // model.make_vocab_size_divisible_by, so LM-head GEMMs get aligned leading dimensions).
  int64_t vocab_begin = 0, vocab_local = 0, vocab_valid = 0;

  static ParamTable build(const ModelConfig& m, int tp, int tp_rank);
  const ParamSpec& get(const std::string& name) const;  // internal error if absent
  int64_t full_numel() const;                           // elements of the full tensors (no padding)
  int index(const std::string& name) const;             // -1 if absent
};

// A flat buffer of `table.total` elements and a view per named tensor.
struct ParamBuffer {
  Tensor flat;
  std::vector<Tensor> views;  // parallel to table.specs; [local_rows, local_cols] (or [local_rows])
  void bind(const ParamTable& table, void* base, DType dtype);
};

// Per-layer views into a ParamBuffer, by role.
struct LayerWeights {
  Tensor ln1, wq, wk, wv, wo, ln2, wgate, wup, wdown;
};
struct ModelWeights {
  Tensor embed, norm, lm_head;  // lm_head aliases embed when tied
  std::vector<LayerWeights> layers;
  void bind(const ParamTable& table, const ParamBuffer& buf, int64_t n_layers, bool tied);
};

// Fills a rank's slice of every tensor from a deterministic full-size initialisation (per-row
// streams of Rng(seed)), so every tp layout starts from the same full weights: matrices
// N(0, init_std), down/o projections scaled by 1/sqrt(2 n_layers), norm weights 1.
void init_params_host(const ParamTable& table, const ModelConfig& m, uint64_t seed, std::vector<float>& out);

}  // namespace lct
