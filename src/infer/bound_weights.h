// The one place inference reads model weights: per layer and for the embedding / final norm / LM
// head, with an explicit acquire and release through the model's ParamStore, so a sharded store
// (ZeRO 3) gathers a unit here and frees it on release, and nothing else in src/infer/ changes.
#pragma once

#include "model/llama.h"

namespace lct {

// The embedding rows of this rank's vocabulary slice, the final norm, the padded LM head.
struct HeadWeights {
  Tensor embed, norm, lm_head;
};

class BoundWeights {
 public:
  explicit BoundWeights(Llama& model) : model_(model) {}
  const LayerWeights& acquire_layer(int l) {
    const ParamTable& t = model_.table();
    layer_ = layer_weights(t, l, model_.store().acquire_params(ParamTable::layer_unit(l)), act());
    return layer_;
  }
  void release_layer(int l) { model_.store().release_params(ParamTable::layer_unit(l)); }
  const HeadWeights& acquire_head() {
    const ParamTable& t = model_.table();
    void* emb = model_.store().acquire_params(0);
    void* head = model_.store().acquire_params(t.head_unit());
    head_.embed = unit_view(t, t.index("model.embed_tokens.weight"), emb, act());
    head_.norm = unit_view(t, t.index("model.norm.weight"), head, act());
    const int lm = t.index("lm_head.weight");
    head_.lm_head = lm >= 0 ? unit_view(t, lm, head, act()) : head_.embed;  // tied: the embedding
    return head_;
  }
  void release_head() {
    model_.store().release_params(model_.table().head_unit());
    model_.store().release_params(0);
  }

 private:
  DType act() const { return model_.ops().act_dtype(); }
  Llama& model_;
  LayerWeights layer_;
  HeadWeights head_;
};

}  // namespace lct
