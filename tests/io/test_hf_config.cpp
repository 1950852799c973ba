// config.json: both rope schemas (fixtures written by transformers 4.46 and 5.24, tools/make_io_fixtures.py),
// writing, round trips, every validation error, and that transformers (in the project's .venv, made by
// make deps) loads what we write with the values we meant (tools/check_hf_config.py).
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "io/hf_config.h"
#include "io_test_util.h"
#include "test_util.h"

namespace fs = std::filesystem;
using lct::HfLlamaConfig;
using lct::test::expect_input_error;
using nlohmann::json;

namespace {

std::string io_data() { return lct::test::data_dir() + "/io"; }

void expect_same(const HfLlamaConfig& a, const HfLlamaConfig& b) {
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_id, b.eos_token_id);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  const auto &r = a.rope_scaling, &s = b.rope_scaling;
  EXPECT_EQ(r.rope_type, s.rope_type);
  EXPECT_EQ(r.factor, s.factor);
  EXPECT_EQ(r.low_freq_factor, s.low_freq_factor);
  EXPECT_EQ(r.high_freq_factor, s.high_freq_factor);
  EXPECT_EQ(r.original_max_position_embeddings, s.original_max_position_embeddings);
  EXPECT_EQ(r.beta_fast, s.beta_fast);
  EXPECT_EQ(r.beta_slow, s.beta_slow);
  EXPECT_EQ(r.attention_factor, s.attention_factor);
}

const char* kKinds[] = {"default", "llama3", "yarn", "dynamic"};

}  // namespace

TEST(HfConfig, ReadsTransformers4And5SchemasAlike) {
  for (const std::string kind : kKinds) {
    SCOPED_TRACE(kind);
    const HfLlamaConfig v4 = lct::read_hf_config(io_data() + "/v4_" + kind);
    const HfLlamaConfig v5 = lct::read_hf_config(io_data() + "/v5_" + kind + "/config.json");
    EXPECT_TRUE(v4.raw.contains("rope_theta"));          // really the old schema
    EXPECT_TRUE(v5.raw.contains("rope_parameters"));     // really the new one
    EXPECT_FALSE(v5.raw.contains("rope_theta"));
    expect_same(v4, v5);
    EXPECT_EQ(v5.vocab_size, 128);
    EXPECT_EQ(v5.hidden_size, 64);
    EXPECT_EQ(v5.num_hidden_layers, 2);
    EXPECT_EQ(v5.num_attention_heads, 4);
    EXPECT_EQ(v5.num_key_value_heads, 2);
    EXPECT_EQ(v5.intermediate_size, 96);
    EXPECT_EQ(v5.head_dim, 16);
    EXPECT_EQ(v5.max_position_embeddings, 512);
    EXPECT_EQ(v5.rms_norm_eps, 1e-5);
  }
  const auto d = lct::read_hf_config(io_data() + "/v5_default");
  EXPECT_EQ(d.rope_theta, 3580165449.0);
  EXPECT_EQ(d.rope_scaling.rope_type, "none");
  EXPECT_TRUE(d.tie_word_embeddings);
  EXPECT_EQ(d.torch_dtype, "float32");
  EXPECT_EQ(d.bos_token_id, std::vector<int64_t>{1});
  EXPECT_EQ(d.eos_token_id, std::vector<int64_t>{2});

  const auto l = lct::read_hf_config(io_data() + "/v4_llama3");
  EXPECT_EQ(l.rope_theta, 500000.0);
  EXPECT_EQ(l.rope_scaling.rope_type, "llama3");
  EXPECT_EQ(l.rope_scaling.factor, 8.0);
  EXPECT_EQ(l.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(l.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(l.rope_scaling.original_max_position_embeddings, 128);
  EXPECT_EQ(l.eos_token_id, (std::vector<int64_t>{101, 108, 109}));
  EXPECT_EQ(l.torch_dtype, "bfloat16");

  const auto y = lct::read_hf_config(io_data() + "/v5_yarn");
  EXPECT_EQ(y.rope_scaling.rope_type, "yarn");
  EXPECT_EQ(y.rope_scaling.factor, 4.0);
  EXPECT_EQ(y.rope_scaling.attention_factor, 1.25);
  EXPECT_EQ(y.rope_scaling.original_max_position_embeddings, 128);

  const auto n = lct::read_hf_config(io_data() + "/v4_dynamic");
  EXPECT_EQ(n.rope_scaling.rope_type, "dynamic");
  EXPECT_EQ(n.rope_scaling.factor, 2.0);
  EXPECT_EQ(n.rope_scaling.original_max_position_embeddings, 512);  // transformers uses max_position_embeddings
  EXPECT_EQ(n.torch_dtype, "float16");
}

TEST(HfConfig, WriteThenReadRoundTrip) {
  for (const std::string src : {"v4_default", "v4_llama3", "v5_yarn", "v5_dynamic"}) {
    SCOPED_TRACE(src);
    HfLlamaConfig c = lct::read_hf_config(io_data() + "/" + src);
    c.raw["lct_custom_field"] = {{"kept", true}};
    const std::string dir = lct::test::scratch_dir("hf_cfg_rt_" + src);
    lct::write_hf_config(dir, c);
    const HfLlamaConfig back = lct::read_hf_config(dir);
    expect_same(c, back);
    const json& j = back.raw;
    EXPECT_EQ(j["architectures"], json({"LlamaForCausalLM"}));
    EXPECT_EQ(j["model_type"], "llama");
    EXPECT_EQ(j["lct_custom_field"]["kept"], true);  // unknown fields carried over
    EXPECT_EQ(j["initializer_range"], 0.02);
    EXPECT_EQ(j["use_cache"], true);
    // Both rope forms, with the same values; rope_scaling only when there is scaling.
    EXPECT_EQ(j.contains("rope_scaling"), c.rope_scaling.rope_type != "none");
    EXPECT_EQ(j["rope_parameters"]["rope_theta"], j["rope_theta"]);
    EXPECT_EQ(j["rope_parameters"]["rope_type"], c.rope_scaling.rope_type == "none" ? "default" : c.rope_scaling.rope_type);
    if (j.contains("rope_scaling")) {
      json rp = j["rope_parameters"];
      rp.erase("rope_theta");
      EXPECT_EQ(rp, j["rope_scaling"]);
    }
    EXPECT_EQ(j["torch_dtype"], c.torch_dtype);
    EXPECT_EQ(j["dtype"], c.torch_dtype);
  }
}

TEST(HfConfig, ThetaWrittenAsExactInteger) {
  HfLlamaConfig c = lct::read_hf_config(io_data() + "/v5_llama3");
  const std::string dir = lct::test::scratch_dir("hf_cfg_theta");
  for (double theta : {3580165449.0, 45218125210.0, 500000.0, 283461213.0}) {
    c.rope_theta = theta;
    lct::write_hf_config(dir, c);
    const std::string text = lct::test::read_bytes(dir + "/config.json");
    const std::string want = "\"rope_theta\": " + std::to_string(int64_t(theta)) + ",";
    EXPECT_NE(text.find(want), std::string::npos) << want << " not in:\n" << text;
    EXPECT_EQ(text.find("e+"), std::string::npos);
    EXPECT_EQ(lct::read_hf_config(dir).rope_theta, theta);
  }
  c.rope_theta = 12345.5;  // not integral: a plain double
  lct::write_hf_config(dir, c);
  EXPECT_NE(lct::test::read_bytes(dir + "/config.json").find("\"rope_theta\": 12345.5,"), std::string::npos);
  EXPECT_EQ(lct::read_hf_config(dir).rope_theta, 12345.5);
}

// ---- validation ----

class HfConfigBad : public ::testing::Test {
 protected:
  std::string dir = lct::test::scratch_dir("hf_cfg_bad");
  json base = lct::read_hf_config(lct::test::data_dir() + "/io/v4_llama3").raw;
  // Writes `j` as dir/config.json and expects read_hf_config to fail naming the file and `needles`.
  void expect_error(const json& j, std::vector<std::string> needles) {
    lct::test::write_bytes(dir + "/config.json", j.dump(2));
    needles.push_back(dir + "/config.json");
    expect_input_error([&] { lct::read_hf_config(dir); }, needles);
  }
  json with(const std::string& key, const json& v) const {
    json j = base;
    j[key] = v;
    return j;
  }
  json without(const std::string& key) const {
    json j = base;
    j.erase(key);
    return j;
  }
};

TEST_F(HfConfigBad, MissingFileAndBadJson) {
  expect_input_error([&] { lct::read_hf_config(dir); }, {dir + "/config.json", "cannot open"});
  expect_input_error([&] { lct::read_hf_config(dir + "/nope.json"); }, {dir + "/nope.json", "cannot open"});
  lct::test::write_bytes(dir + "/config.json", "{\"vocab_size\": 12,\n  \"hidden_size\": }");
  expect_input_error([&] { lct::read_hf_config(dir); }, {dir + "/config.json", "not valid JSON", "line 2"});
  expect_error(json::array({1, 2}), {"expected a JSON object"});
}

TEST_F(HfConfigBad, ModelType) {
  expect_error(with("model_type", "gpt2"), {"\"gpt2\"", "Llama-family"});
  expect_error(without("model_type"), {"\"model_type\" is missing"});
  json m = with("model_type", "mistral");
  m["sliding_window"] = nullptr;
  lct::test::write_bytes(dir + "/config.json", m.dump());
  EXPECT_EQ(lct::read_hf_config(dir).hidden_size, 64);  // mistral without a window is a Llama
  m["sliding_window"] = 64;
  expect_error(m, {"sliding_window", "64", "not supported"});
}

TEST_F(HfConfigBad, MissingRequiredFieldIsNamed) {
  for (const char* k : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                        "max_position_embeddings", "rms_norm_eps"}) {
    SCOPED_TRACE(k);
    expect_error(without(k), {std::string("\"") + k + "\" is missing"});
    expect_error(with(k, nullptr), {std::string("\"") + k + "\" is missing"});
  }
  expect_error(with("hidden_size", 64.5), {"\"hidden_size\"", "must be an integer", "64.5"});
  expect_error(with("hidden_size", "64"), {"\"hidden_size\"", "must be an integer"});
  expect_error(with("num_hidden_layers", 0), {"\"num_hidden_layers\"", "positive"});
  expect_error(with("tie_word_embeddings", 1), {"\"tie_word_embeddings\"", "true or false"});
  expect_error(with("eos_token_id", "</s>"), {"\"eos_token_id\"", "list of integers"});
  expect_error(with("eos_token_id", json::array({1, "x"})), {"\"eos_token_id\""});
}

TEST_F(HfConfigBad, InconsistentHeads) {
  json j = with("num_attention_heads", 6);
  j.erase("head_dim");
  expect_error(j, {"hidden_size 64", "num_attention_heads 6", "head_dim"});
  j["head_dim"] = 16;  // an explicit head_dim makes it legal (q_proj is then [96, 64])
  lct::test::write_bytes(dir + "/config.json", j.dump());
  j["num_key_value_heads"] = 4;
  expect_error(j, {"num_attention_heads 6", "num_key_value_heads 4"});
  expect_error(with("head_dim", 15), {"\"head_dim\"", "even"});
  // Missing num_key_value_heads means multi-head attention; missing head_dim means hidden/heads.
  json k = without("num_key_value_heads");
  k.erase("head_dim");
  lct::test::write_bytes(dir + "/config.json", k.dump());
  const auto c = lct::read_hf_config(dir);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
}

TEST_F(HfConfigBad, UnsupportedFeatures) {
  expect_error(with("attention_bias", true), {"\"attention_bias\"", "not supported"});
  expect_error(with("mlp_bias", true), {"\"mlp_bias\"", "not supported"});
  expect_error(with("hidden_act", "gelu"), {"\"hidden_act\"", "gelu", "silu"});
}

TEST_F(HfConfigBad, RopeScaling) {
  json rs = base["rope_scaling"];
  auto rope = [&](const json& r) { return with("rope_scaling", r); };
  json r = rs;
  r["rope_type"] = "longrope";
  expect_error(rope(r), {"\"rope_scaling.rope_type\"", "longrope", "supported"});
  r = rs;
  r.erase("low_freq_factor");
  expect_error(rope(r), {"\"rope_scaling.low_freq_factor\" is missing"});
  r = rs;
  r["factor"] = 0.5;
  expect_error(rope(r), {"\"rope_scaling.factor\"", ">= 1"});
  r = rs;
  r["high_freq_factor"] = 0.5;
  expect_error(rope(r), {"\"rope_scaling.high_freq_factor\"", "greater than low_freq_factor"});
  expect_error(rope(json::array({1})), {"\"rope_scaling\" must be an object"});
  r = rs;
  r.erase("rope_type");
  r["type"] = "linear";  // the 4.x spelling "type" still reads
  lct::test::write_bytes(dir + "/config.json", rope(r).dump());
  EXPECT_EQ(lct::read_hf_config(dir).rope_scaling.rope_type, "linear");
  json y = rope({{"rope_type", "yarn"}, {"factor", 4.0}, {"mscale", 0.7}});
  expect_error(y, {"\"rope_scaling.mscale\"", "not supported"});
  r = rs;
  r["partial_rotary_factor"] = 0.5;
  expect_error(rope(r), {"partial_rotary_factor", "not supported"});
}

TEST_F(HfConfigBad, BothRopeSchemasMustAgree) {
  json j = base;  // 4.x form + a matching 5.x form: fine
  j["rope_parameters"] = j["rope_scaling"];
  j["rope_parameters"]["rope_theta"] = 500000;
  lct::test::write_bytes(dir + "/config.json", j.dump());
  EXPECT_EQ(lct::read_hf_config(dir).rope_theta, 500000.0);
  json k = j;
  k["rope_parameters"]["factor"] = 16.0;
  expect_error(k, {"\"rope_scaling\"", "\"rope_parameters\"", "different"});
  k = j;
  k["rope_parameters"]["rope_theta"] = 1000000;
  expect_error(k, {"rope_theta differs", "500000", "1000000"});
  k = j;
  k.erase("rope_scaling");
  k["rope_parameters"]["rope_theta"] = 10000.0;
  expect_error(k, {"rope_theta differs"});
  // Neither form and no theta: transformers' default 10000 and no scaling.
  k = without("rope_scaling");
  k.erase("rope_theta");
  lct::test::write_bytes(dir + "/config.json", k.dump());
  const auto c = lct::read_hf_config(dir);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.rope_type, "none");
}

// ---- transformers loads what we write (the project's .venv from make deps; no torch needed) ----

TEST(HfConfig, TransformersLoadsWhatWeWrite) {
  const std::string py = lct::test::python_exe();
  const auto probe = lct::test::run_command(py + " -c 'import transformers' 2>/dev/null");
  if (probe.exit_code != 0) GTEST_SKIP() << py << " has no transformers (make deps installs it into .venv)";
  std::string dirs;
  int i = 0;
  for (const std::string src : {"v4_default", "v5_llama3", "v4_yarn", "v5_dynamic"}) {
    for (double theta : {3580165449.0, 500000.0, 12345.5}) {
      HfLlamaConfig c = lct::read_hf_config(io_data() + "/" + src);
      c.rope_theta = theta;
      const std::string dir = lct::test::scratch_dir("hf_cfg_tf_" + std::to_string(i++));
      lct::write_hf_config(dir, c);
      // What we meant, in the names transformers resolves (tools/check_hf_config.py).
      const json w = lct::hf_config_to_json(c);
      json exp = w["rope_parameters"];
      for (const char* k : {"model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                            "num_key_value_heads", "intermediate_size", "head_dim", "max_position_embeddings",
                            "rms_norm_eps", "tie_word_embeddings", "bos_token_id", "eos_token_id"})
        exp[k] = w[k];
      exp["dtype"] = c.torch_dtype;
      lct::test::write_bytes(dir + "/lct_expected.json", exp.dump(2));
      dirs += " " + dir;
    }
  }
  const auto r = lct::test::run_command(py + " " + lct::test::source_dir() + "/tools/check_hf_config.py" + dirs);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}
