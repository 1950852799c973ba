// Initial weights of a stage: random (seeded, the same full tensors whatever the layout), or
// loaded from model.init_from (an HF directory with safetensors), each rank reading only its
// tensor-parallel slices.
#pragma once

#include "deck/config.h"
#include "model/llama.h"
#include "ops/ops.h"

namespace lct {

void init_random_weights(Llama& model, Ops& ops, const Config& cfg);
// Reads every parameter from the safetensors of an HF model directory (names, shapes checked).
void load_hf_weights(Llama& model, Ops& ops, const std::string& dir);
// The same as a host fp32 flat vector in `table`'s layout (this rank's tp slices only).
std::vector<float> read_hf_params(const ParamTable& table, const std::string& dir);
// Only the given flat ranges of that vector (their elements back to back): a ZeRO-3 rank's shard.
std::vector<float> read_hf_ranges(const ParamTable& table, const std::string& dir, const std::vector<FlatRange>& ranges);
// Copies a host fp32 flat vector (table layout) into the model's parameters.
void upload_params(Llama& model, Ops& ops, const std::vector<float>& host);

}  // namespace lct
