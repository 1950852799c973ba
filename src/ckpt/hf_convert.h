// Hugging Face import and export (bin/lcconvert): an lctrain checkpoint to a directory that
// transformers and vLLM load (config.json with the trained RoPE, sharded safetensors, the tokenizer
// files of the model the run started from) and back.
#pragma once

#include <string>
#include <vector>

#include "deck/config.h"
#include "io/hf_config.h"

namespace lct {

// The model shape an HF config.json describes (read_hf_config has already filled head_dim).
ModelConfig model_config_of(const HfLlamaConfig& h);

struct ExportOptions {
  std::string dtype = "bf16";             // bf16 | fp32
  uint64_t shard_bytes = 5'000'000'000ull;  // ~5 GB per safetensors file, as transformers writes
  int64_t max_position_embeddings = 0;    // 0 = the checkpoint's training seq_len
};

// Writes OUTDIR from CHECKPOINT; returns a short report.
std::string export_to_hf(const std::string& checkpoint, const std::string& outdir, const ExportOptions& opt);

// Writes an lctrain checkpoint (weights only, marked as a completed stage 0, so a run with
// checkpoint.resume = <it> starts stage 1 from these weights) from an HF model directory.
std::string import_from_hf(const std::string& dir, const std::string& checkpoint);

// Logits of the checkpoint's model for one sequence of tokens, [T, V] row-major (cpu, fp32).
// InputError when a token id is outside the checkpoint's vocabulary [0, vocab_size).
std::vector<float> checkpoint_logits(const std::string& checkpoint, const std::vector<int32_t>& tokens);

}  // namespace lct
