#include "io/hf_config.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/text_file.h"

namespace lct {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Field access with messages that name the file and the key.
struct Fields {
  const json& j;
  const std::string& path;
  std::string scope;  // "" for the top level, e.g. "rope_scaling." inside it

  bool present(const char* k) const { return j.contains(k) && !j.at(k).is_null(); }
  std::string name(const char* k) const { return scope + k; }

  [[noreturn]] void fail(const char* k, const std::string& what) const {
    throw InputError(str(path, ": \"", name(k), "\" ", what));
  }
  int64_t integer(const char* k) const {
    if (!present(k)) fail(k, "is missing (a required field of a Llama config.json)");
    const json& v = j.at(k);
    if (!v.is_number_integer()) fail(k, str("must be an integer, got ", v.dump()));
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) fail(k, "is too large");
    return v.get<int64_t>();
  }
  int64_t integer(const char* k, int64_t dflt) const { return present(k) ? integer(k) : dflt; }
  int64_t positive(const char* k) const {
    int64_t v = integer(k);
    if (v <= 0) fail(k, str("must be positive, got ", v));
    return v;
  }
  double number(const char* k) const {
    if (!present(k)) fail(k, "is missing (a required field of a Llama config.json)");
    const json& v = j.at(k);
    if (!v.is_number()) fail(k, str("must be a number, got ", v.dump()));
    return v.get<double>();
  }
  double number(const char* k, double dflt) const { return present(k) ? number(k) : dflt; }
  bool boolean(const char* k, bool dflt) const {
    if (!present(k)) return dflt;
    if (!j.at(k).is_boolean()) fail(k, str("must be true or false, got ", j.at(k).dump()));
    return j.at(k).get<bool>();
  }
  std::string string(const char* k, const std::string& dflt) const {
    if (!present(k)) return dflt;
    if (!j.at(k).is_string()) fail(k, str("must be a string, got ", j.at(k).dump()));
    return j.at(k).get<std::string>();
  }
  // An int, a list of ints, or null/absent (empty).
  std::vector<int64_t> int_list(const char* k) const {
    std::vector<int64_t> r;
    if (!present(k)) return r;
    const json& v = j.at(k);
    if (v.is_number_integer()) return {v.get<int64_t>()};
    if (!v.is_array()) fail(k, str("must be an integer or a list of integers, got ", v.dump()));
    for (const auto& e : v) {
      if (!e.is_number_integer()) fail(k, str("must be an integer or a list of integers, got ", v.dump()));
      r.push_back(e.get<int64_t>());
    }
    return r;
  }
};

// One rope dictionary (4.x "rope_scaling" or 5.x "rope_parameters"); theta is set when it holds one.
struct RopeRead {
  HfRopeScaling s;
  bool has_theta = false;
  double theta = 0;
};

RopeRead parse_rope(const json& d, const std::string& path, const std::string& key, int64_t max_pos) {
  if (!d.is_object()) throw InputError(str(path, ": \"", key, "\" must be an object, got ", d.dump()));
  Fields f{d, path, key + "."};
  RopeRead r;
  // transformers 4.x accepted "type" for "rope_type"; "default" is its name for no scaling.
  std::string type = f.present("rope_type") ? f.string("rope_type", "") : f.string("type", "default");
  if (type == "default") type = "none";
  r.s.rope_type = type;
  if (f.present("rope_theta")) {
    r.has_theta = true;
    r.theta = f.number("rope_theta");
  }
  if (f.present("partial_rotary_factor") && f.number("partial_rotary_factor") != 1.0)
    f.fail("partial_rotary_factor", "is not 1: partial rotary embeddings are not supported");
  if (type == "none") return r;
  if (type != "linear" && type != "dynamic" && type != "llama3" && type != "yarn")
    throw InputError(str(path, ": \"", key, ".rope_type\" is \"", type,
                         "\", which lctrain does not implement (supported: default, linear, dynamic, llama3, yarn)"));
  r.s.factor = f.number("factor");
  if (!(r.s.factor >= 1.0)) f.fail("factor", str("must be >= 1, got ", r.s.factor));
  if (type == "dynamic") {
    r.s.original_max_position_embeddings = max_pos;  // transformers' dynamic NTK uses max_position_embeddings
  } else if (type == "llama3") {
    r.s.low_freq_factor = f.number("low_freq_factor");
    r.s.high_freq_factor = f.number("high_freq_factor");
    if (!(r.s.high_freq_factor > r.s.low_freq_factor) || !(r.s.low_freq_factor > 0))
      f.fail("high_freq_factor", str("must be greater than low_freq_factor (> 0), got high ", r.s.high_freq_factor,
                                     ", low ", r.s.low_freq_factor));
    r.s.original_max_position_embeddings = f.integer("original_max_position_embeddings", max_pos);
  } else if (type == "yarn") {
    r.s.original_max_position_embeddings = f.integer("original_max_position_embeddings", max_pos);
    r.s.beta_fast = f.number("beta_fast", 32);
    r.s.beta_slow = f.number("beta_slow", 1);
    r.s.attention_factor = f.number("attention_factor", 0);
    if (r.s.attention_factor < 0) f.fail("attention_factor", "must be >= 0");
    if (f.present("mscale") || f.present("mscale_all_dim"))
      f.fail(f.present("mscale") ? "mscale" : "mscale_all_dim",
             "is set: DeepSeek-style yarn mscale is not supported (use attention_factor)");
    if (!f.boolean("truncate", true)) f.fail("truncate", "is false: untruncated yarn ramps are not supported");
  }
  if ((type == "llama3" || type == "yarn") && r.s.original_max_position_embeddings <= 0)
    f.fail("original_max_position_embeddings", str("must be positive, got ", r.s.original_max_position_embeddings));
  return r;
}

bool same_rope(const HfRopeScaling& a, const HfRopeScaling& b) {
  return a.rope_type == b.rope_type && a.factor == b.factor && a.low_freq_factor == b.low_freq_factor &&
         a.high_freq_factor == b.high_freq_factor &&
         a.original_max_position_embeddings == b.original_max_position_embeddings && a.beta_fast == b.beta_fast &&
         a.beta_slow == b.beta_slow && a.attention_factor == b.attention_factor;
}

// rope_theta as an exact integer when integral (3580165449, not 3.58e9), else a double.
json theta_json(double t) {
  if (std::isfinite(t) && t == std::floor(t) && std::fabs(t) < 9.0e15) return json(int64_t(t));
  return json(t);
}

// The rope dictionary without rope_theta, in the keys transformers validates for each type.
json rope_fields(const HfRopeScaling& s) {
  json r = json::object();
  r["rope_type"] = s.rope_type == "none" ? "default" : s.rope_type;
  if (s.rope_type == "none") return r;
  r["factor"] = s.factor;
  if (s.rope_type == "llama3") {
    r["low_freq_factor"] = s.low_freq_factor;
    r["high_freq_factor"] = s.high_freq_factor;
    r["original_max_position_embeddings"] = s.original_max_position_embeddings;
  } else if (s.rope_type == "yarn") {
    r["original_max_position_embeddings"] = s.original_max_position_embeddings;
    r["beta_fast"] = s.beta_fast;
    r["beta_slow"] = s.beta_slow;
    if (s.attention_factor > 0) r["attention_factor"] = s.attention_factor;
  }
  return r;
}

json token_ids_json(const std::vector<int64_t>& v) {
  if (v.empty()) return nullptr;
  if (v.size() == 1) return v[0];
  return v;
}

}  // namespace

HfLlamaConfig read_hf_config(const std::string& path_or_dir) {
  std::error_code ec;
  std::string path = path_or_dir;
  if (fs::is_directory(path, ec)) path = (fs::path(path) / "config.json").string();
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError(str(path, ": cannot open the Hugging Face config (give a config.json or the model folder "
                               "holding one)"));
  std::stringstream ss;
  ss << in.rdbuf();
  HfLlamaConfig c;
  try {
    c.raw = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw InputError(str(path, ": not valid JSON (byte ", e.byte, "): ", e.what()));
  } catch (const json::exception& e) {  // e.g. out_of_range: a number too large for a double
    throw InputError(str(path, ": not valid JSON: ", e.what()));
  }
  if (!c.raw.is_object()) throw InputError(str(path, ": expected a JSON object, got ", c.raw.type_name()));
  Fields f{c.raw, path, ""};

  const std::string model_type = f.string("model_type", "");
  if (model_type.empty())
    throw InputError(str(path, ": \"model_type\" is missing; lctrain reads Llama-family configs (\"llama\", "
                               "\"mistral\")"));
  if (model_type != "llama" && model_type != "mistral")
    throw InputError(str(path, ": \"model_type\" is \"", model_type,
                         "\"; lctrain reads Llama-family configs only (\"llama\", \"mistral\")"));

  c.vocab_size = f.positive("vocab_size");
  c.hidden_size = f.positive("hidden_size");
  c.num_hidden_layers = f.positive("num_hidden_layers");
  c.num_attention_heads = f.positive("num_attention_heads");
  c.intermediate_size = f.positive("intermediate_size");
  c.max_position_embeddings = f.positive("max_position_embeddings");
  c.rms_norm_eps = f.number("rms_norm_eps");
  if (!(c.rms_norm_eps > 0)) f.fail("rms_norm_eps", str("must be positive, got ", c.rms_norm_eps));
  c.num_key_value_heads = f.present("num_key_value_heads") ? f.positive("num_key_value_heads") : c.num_attention_heads;
  if (f.present("head_dim")) {
    c.head_dim = f.positive("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      throw InputError(str(path, ": hidden_size ", c.hidden_size, " is not divisible by num_attention_heads ",
                           c.num_attention_heads, " and no \"head_dim\" is given"));
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    throw InputError(str(path, ": num_attention_heads ", c.num_attention_heads,
                         " is not a multiple of num_key_value_heads ", c.num_key_value_heads));
  if (c.head_dim % 2 != 0) f.fail("head_dim", str("must be even for rotary embeddings, got ", c.head_dim));

  // Features a Llama-family config may switch on that our model does not implement.
  if (f.string("hidden_act", "silu") != "silu")
    f.fail("hidden_act", str("is \"", f.string("hidden_act", ""), "\"; only \"silu\" (SwiGLU) is supported"));
  if (f.boolean("attention_bias", false)) f.fail("attention_bias", "is true; attention biases are not supported");
  if (f.boolean("mlp_bias", false)) f.fail("mlp_bias", "is true; MLP biases are not supported");
  if (f.present("sliding_window") && f.integer("sliding_window") < c.max_position_embeddings)
    f.fail("sliding_window", str("is ", f.integer("sliding_window"),
                                 ": sliding-window attention is not supported (full causal attention only)"));
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.bos_token_id = f.int_list("bos_token_id");
  c.eos_token_id = f.int_list("eos_token_id");
  // transformers 5.x writes "dtype", 4.x "torch_dtype"; 5.x prefers "dtype" when both are there.
  c.torch_dtype = f.present("dtype") && c.raw["dtype"].is_string() ? f.string("dtype", "") : f.string("torch_dtype", "");

  // RoPE, as transformers 5.x resolves it: the parameters dict is "rope_scaling" (4.x) if set, else
  // "rope_parameters" (5.x); theta is the dict's "rope_theta", else the top-level one, else 10000.
  const bool has_rs = f.present("rope_scaling"), has_rp = f.present("rope_parameters");
  const bool has_top_theta = f.present("rope_theta");
  const double top_theta = f.number("rope_theta", 10000.0);
  RopeRead rs, rp;
  if (has_rs) rs = parse_rope(c.raw["rope_scaling"], path, "rope_scaling", c.max_position_embeddings);
  if (has_rp) rp = parse_rope(c.raw["rope_parameters"], path, "rope_parameters", c.max_position_embeddings);
  const RopeRead& use = has_rs ? rs : rp;
  c.rope_scaling = use.s;
  c.rope_theta = use.has_theta ? use.theta : top_theta;
  // Both schemas at once must agree, or transformers 4.x and 5.x would build different models.
  if (has_rs && has_rp && !same_rope(rs.s, rp.s))
    throw InputError(str(path, ": \"rope_scaling\" (transformers 4.x) and \"rope_parameters\" (5.x) describe "
                               "different RoPE scalings; keep one of them"));
  for (const RopeRead* r : {&rs, &rp})
    if (r->has_theta && ((has_top_theta && r->theta != top_theta) || r->theta != c.rope_theta))
      throw InputError(str(path, ": rope_theta differs between the top level (", theta_json(top_theta).dump(),
                           ") and the rope dictionary (", theta_json(r->theta).dump(), "); keep one value"));
  if (!(c.rope_theta > 0)) throw InputError(str(path, ": rope_theta must be positive, got ", c.rope_theta));
  return c;
}

json hf_config_to_json(const HfLlamaConfig& c) {
  json j = c.raw.is_object() ? c.raw : json::object();
  for (const char* k : {"rope_scaling", "rope_parameters", "rope_theta", "torch_dtype", "dtype", "sliding_window"})
    j.erase(k);
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["intermediate_size"] = c.intermediate_size;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["bos_token_id"] = token_ids_json(c.bos_token_id);
  j["eos_token_id"] = token_ids_json(c.eos_token_id);
  // 4.x reads the top-level theta and "rope_scaling"; 5.x takes "rope_scaling" over "rope_parameters"
  // when both are present, so both forms carry the same values.
  j["rope_theta"] = theta_json(c.rope_theta);
  if (c.rope_scaling.rope_type != "none") j["rope_scaling"] = rope_fields(c.rope_scaling);
  json rp = rope_fields(c.rope_scaling);
  rp["rope_theta"] = theta_json(c.rope_theta);
  j["rope_parameters"] = rp;
  if (!c.torch_dtype.empty()) {
    j["torch_dtype"] = c.torch_dtype;
    j["dtype"] = c.torch_dtype;
  }
  return j;
}

void write_hf_config(const std::string& dir, const HfLlamaConfig& cfg) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  write_text_file_atomically((fs::path(dir) / "config.json").string(), hf_config_to_json(cfg).dump(2) + "\n",
                             "the Hugging Face config");
}

}  // namespace lct
