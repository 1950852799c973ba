// The teacher-forced tasks (niah, passkey, kv: eval/eval.h) scored by generation instead: each
// prompt up to its question runs through the inference path (src/infer/: prefill over the cp ring,
// KV-cache decode merged across cp), greedy, for as many tokens as the answer has; a prompt is
// correct when the generated tokens are the answer (eval.by_generation, `make run`). Greedy decoding
// reproduces the teacher-forced argmaxes whenever they are all right, so the two exact-match
// accuracies agree up to floating-point ties: this checks the inference path against the forward
// pass at every evaluated length, on the same prompts (docs/longctx.md).
#pragma once

#include <memory>
#include <vector>

#include "eval/eval.h"
#include "eval/niah_table.h"

namespace lct {

// A model for the decoder (eval/ruler_eval.cpp too): em's shape with the layout of ctx and a minimal
// sequence (the decoder brings its own buffers), its weights filled by `load`. Collective.
std::unique_ptr<Llama> make_decoding_model(const EvalModel& em, ParallelContext& ctx, Ops& ops, const WeightLoader& load);

// Collective over ctx's world; prompts shared out over the dp replicas. `model` is built with a
// small shape (the decoder brings its own buffers) and loaded. Cells as evaluate_grid's, with
// nll_sum = 0 (generation reads no answer probabilities).
std::vector<EvalCell> evaluate_grid_generated(const EvalGrid& grid, Llama& model, const RopeConfig& rope,
                                              ParallelContext& ctx, Ops& ops);

}  // namespace lct
