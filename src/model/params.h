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

// A unit: the tensors used together, gathered and reduced together under ZeRO (the embedding;
// one layer; the final norm with the LM head). [begin, begin + size) of the flat buffer; size is
// padded to a multiple of the table's unit padding (the dp x cp size under ZeRO, so every rank owns
// size / (dp x cp) elements of every unit); the padding is zero and belongs to no tensor.
struct ParamUnit {
  int64_t begin = 0, size = 0;
  int first_spec = 0, end_spec = 0;  // its tensors: specs[first_spec, end_spec)
};

// A range [begin, begin + len) of the flat parameter space.
struct FlatRange {
  int64_t begin = 0, len = 0;
};

// The parameter table for a model shape and a tp rank, in HF order: embed_tokens, then per layer
// input_layernorm, q/k/v/o_proj, post_attention_layernorm, gate/up/down_proj, then norm, lm_head
// (absent when tied). Every tp rank of a layout has the same offsets (slices are equal in size).
struct ParamTable {
  std::vector<ParamSpec> specs;
  std::vector<ParamUnit> units;  // 0: embedding; 1 + l: layer l; last: final norm (+ LM head)
  int64_t total = 0;  // local elements in the flat buffer, unit padding included
  // This rank's vocabulary slice: ids [vocab_begin, vocab_begin + vocab_valid) in its first
  // vocab_valid rows, then zero padding up to vocab_local rows (a multiple of
  // model.make_vocab_size_divisible_by, so LM-head GEMMs get aligned leading dimensions).
  int64_t vocab_begin = 0, vocab_local = 0, vocab_valid = 0;

  // unit_padding: each unit's size is rounded up to a multiple of it (ZeRO: the dp x cp size).
  static ParamTable build(const ModelConfig& m, int tp, int tp_rank, int64_t unit_padding = 1);
  static int layer_unit(int64_t l) { return int(1 + l); }
  int head_unit() const { return int(units.size()) - 1; }
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

// The view of tensor `spec` in a buffer holding its unit, with the unit's first element at `unit_base`.
Tensor unit_view(const ParamTable& table, int spec, void* unit_base, DType dtype);

// Layer l's tensors, by role, in a buffer holding its unit (layer_unit(l)).
struct LayerWeights {
  Tensor ln1, wq, wk, wv, wo, ln2, wgate, wup, wdown;
};
LayerWeights layer_weights(const ParamTable& table, int64_t l, void* unit_base, DType dtype);

// Fills a rank's slice of every tensor from a deterministic full-size initialisation (per-row
// streams of Rng(seed)), so every tp layout starts from the same full weights: matrices
// N(0, init_std), down/o projections scaled by 1/sqrt(2 n_layers), norm weights 1.
void init_params_host(const ParamTable& table, const ModelConfig& m, uint64_t seed, std::vector<float>& out);

}  // namespace lct
