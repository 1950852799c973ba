// The one place inference reads model weights: per layer and for the embedding / final norm / LM
// head, with an explicit acquire and release. Today the model keeps every weight resident and
// acquire just returns its views; a sharded parameter store (ZeRO-3) gathers a layer here and
// frees it on release, and nothing else in src/infer/ changes.
#pragma once

#include "model/llama.h"

namespace lct {

class BoundWeights {
 public:
  explicit BoundWeights(Llama& model) : model_(model) {}
  const LayerWeights& acquire_layer(int l) { return model_.weights().layers[size_t(l)]; }
  void release_layer(int l) { (void)l; }
  // Embedding rows of this rank's vocabulary slice, the final norm, the padded LM head.
  const ModelWeights& acquire_head() { return model_.weights(); }
  void release_head() {}

 private:
  Llama& model_;
};

}  // namespace lct
