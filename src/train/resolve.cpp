#include "train/resolve.h"

#include <filesystem>

#include "core/error.h"
#include "deck/config.h"
#include "io/hf_config.h"

namespace lct {

namespace {

bool is_hf_dir(const std::string& p) {
  namespace fs = std::filesystem;
  return fs::is_directory(p) || (fs::path(p).filename() == "config.json");
}

// Sets key from config.json unless the deck gave it; a given value must agree.
void take(Deck& d, const std::string& key, const std::string& value, const std::string& field,
          const std::string& path) {
  const std::string v = validate_value(key, value, path);
  if (d.given(key) && d.origin(key).rfind("from ", 0) != 0) {
    if (d.get(key) != v)
      throw InputError(str(key, " = ", d.get(key), " (", d.origin(key), ") contradicts ", field, " = ", v, " in ",
                           path, " (model.init_from); remove the key from the deck or fix it"));
    return;
  }
  d.set(key, v, "from " + path);
}

}  // namespace

void apply_init_from(Deck& d) {
  const std::string src = d.get("model.init_from");
  if (src.empty() || !is_hf_dir(src)) return;
  const HfLlamaConfig h = read_hf_config(src);
  const std::string path = std::filesystem::is_directory(src) ? src + "/config.json" : src;
  take(d, "model.vocab_size", std::to_string(h.vocab_size), "vocab_size", path);
  take(d, "model.dim", std::to_string(h.hidden_size), "hidden_size", path);
  take(d, "model.n_layers", std::to_string(h.num_hidden_layers), "num_hidden_layers", path);
  take(d, "model.n_heads", std::to_string(h.num_attention_heads), "num_attention_heads", path);
  take(d, "model.n_kv_heads", std::to_string(h.num_key_value_heads), "num_key_value_heads", path);
  if (h.head_dim > 0) take(d, "model.head_dim", std::to_string(h.head_dim), "head_dim", path);
  take(d, "model.ffn_dim", std::to_string(h.intermediate_size), "intermediate_size", path);
  take(d, "model.norm_eps", format_number(h.rms_norm_eps), "rms_norm_eps", path);
  take(d, "model.tie_embeddings", h.tie_word_embeddings ? "true" : "false", "tie_word_embeddings", path);
  // The pretrained model's RoPE: base values for theta = auto, and the default theta.
  if (!d.given("rope.base_theta")) d.set("rope.base_theta", format_number(h.rope_theta), "from " + path);
  const int64_t ctx = h.rope_scaling.original_max_position_embeddings > 0 ? h.rope_scaling.original_max_position_embeddings
                                                                         : h.max_position_embeddings;
  if (!d.given("rope.base_context") && ctx > 0) d.set("rope.base_context", std::to_string(ctx), "from " + path);
  if (!d.given("rope.theta")) d.set("rope.theta", format_number(h.rope_theta), "from " + path);
  if (!d.given("rope.scaling") && h.rope_scaling.rope_type != "none") {
    const HfRopeScaling& r = h.rope_scaling;
    d.set("rope.scaling", r.rope_type, "from " + path);
    d.set("rope.factor", format_number(r.factor), "from " + path);
    d.set("rope.low_freq_factor", format_number(r.low_freq_factor), "from " + path);
    d.set("rope.high_freq_factor", format_number(r.high_freq_factor), "from " + path);
    if (r.original_max_position_embeddings > 0)
      d.set("rope.original_max_position_embeddings", std::to_string(r.original_max_position_embeddings), "from " + path);
    d.set("rope.beta_fast", format_number(r.beta_fast), "from " + path);
    d.set("rope.beta_slow", format_number(r.beta_slow), "from " + path);
    if (r.attention_factor > 0) d.set("rope.attention_factor", format_number(r.attention_factor), "from " + path);
  }
}

Deck resolve_run_stage(const Deck& base, int n) {
  Deck d = base.stage(n);
  apply_init_from(d);
  resolve_deck(d);
  return d;
}

}  // namespace lct
