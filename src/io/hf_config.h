// Hugging Face config.json for Llama-family models: read (both the transformers 4.x schema, top-level
// "rope_theta" + "rope_scaling", and the 5.x schema, "rope_parameters" holding rope_theta and
// rope_type) and write (a file that transformers 4.4x and 5.x both load to the same values).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lct {

// RoPE scaling as transformers names it. rope_type: "none" (transformers' "default"), "linear",
// "dynamic", "llama3" or "yarn"; other types are rejected when reading.
struct HfRopeScaling {
  std::string rope_type = "none";
  double factor = 1, low_freq_factor = 1, high_freq_factor = 4;
  int64_t original_max_position_embeddings = 0;  // 0 = unset
  double beta_fast = 32, beta_slow = 1;
  double attention_factor = 0;  // yarn; 0 = unset (transformers derives 0.1 ln(factor) + 1)
};

struct HfLlamaConfig {
  int64_t vocab_size = 0, hidden_size = 0, num_hidden_layers = 0, num_attention_heads = 0,
          num_key_value_heads = 0, intermediate_size = 0, head_dim = 0, max_position_embeddings = 0;
  double rms_norm_eps = 1e-6, rope_theta = 10000;
  bool tie_word_embeddings = false;
  HfRopeScaling rope_scaling;
  std::vector<int64_t> bos_token_id, eos_token_id;  // empty when null; eos may be an int or a list
  std::string torch_dtype;                          // "dtype" (5.x) or "torch_dtype" (4.x) as found; may be empty
  nlohmann::json raw;                               // the whole file, so a writer can carry unknown fields over
};

// Reads `path_or_dir` (a config.json or a folder holding one). InputError on: a missing file, bad JSON,
// a model_type that is not llama/mistral, a missing or mistyped required field (named), inconsistent
// heads (hidden_size % num_attention_heads when head_dim is absent; num_attention_heads %
// num_key_value_heads), a feature our Llama does not implement (biases, non-SiLU activation, sliding
// window), an unsupported or incomplete rope scaling, or both rope schemas present with different values.
HfLlamaConfig read_hf_config(const std::string& path_or_dir);

// Writes dir/config.json (dir created if needed): the fields of cfg.raw that we do not set, then
// architectures ["LlamaForCausalLM"], model_type "llama", the model shape, both rope forms
// (top-level rope_theta + rope_scaling for 4.x, omitted when none; rope_parameters for 5.x), and the
// dtype under both "torch_dtype" and "dtype". rope_theta is an exact integer when it is integral.
void write_hf_config(const std::string& dir, const HfLlamaConfig& cfg);

// The JSON write_hf_config writes (for tests and for callers that add fields).
nlohmann::json hf_config_to_json(const HfLlamaConfig& cfg);

}  // namespace lct
