// The tiny Hugging Face Llama models in tests/data/hf/<name>/ (save_pretrained output, made by
// tools/make_reference.py): config.json reads to the shape recorded in reference.h5, model.safetensors
// holds exactly the HF parameter names and shapes, and every value equals reference.h5 /weights/<name>.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>

#include "io/hf_config.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

// The committed fixtures (tests/data/hf/README.md): every one must be there, whole.
const char* kModels[] = {"tiny_gqa2", "tiny_gqa4_tied", "tiny_mha"};

// The HF names and shapes a Llama with this config has, in HF order.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_params(const lct::HfLlamaConfig& c) {
  const int64_t H = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim,
                F = c.intermediate_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> p = {{"model.embed_tokens.weight", {c.vocab_size, H}}};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string L = "model.layers." + std::to_string(l) + ".";
    p.push_back({L + "input_layernorm.weight", {H}});
    p.push_back({L + "self_attn.q_proj.weight", {q, H}});
    p.push_back({L + "self_attn.k_proj.weight", {kv, H}});
    p.push_back({L + "self_attn.v_proj.weight", {kv, H}});
    p.push_back({L + "self_attn.o_proj.weight", {H, q}});
    p.push_back({L + "post_attention_layernorm.weight", {H}});
    p.push_back({L + "mlp.gate_proj.weight", {F, H}});
    p.push_back({L + "mlp.up_proj.weight", {F, H}});
    p.push_back({L + "mlp.down_proj.weight", {H, F}});
  }
  p.push_back({"model.norm.weight", {H}});
  if (!c.tie_word_embeddings) p.push_back({"lm_head.weight", {c.vocab_size, H}});
  return p;
}

template <class T>
T root_attr(hid_t f, const char* name, hid_t type) {
  T v{};
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  EXPECT_GE(a, 0) << name;
  if (a >= 0) {
    EXPECT_GE(H5Aread(a, type, &v), 0) << name;
    H5Aclose(a);
  }
  return v;
}

}  // namespace

TEST(HfTinyModels, ConfigAndWeightsMatchReference) {
  for (const char* name : kModels) {
    const std::string dir = lct::test::data_dir() + "/hf/" + name;
    SCOPED_TRACE(dir);
    for (const char* file : {"config.json", "model.safetensors", "reference.h5"})
      ASSERT_TRUE(fs::exists(dir + "/" + file)) << "fixture missing: " << dir << "/" << file;
    const lct::HfLlamaConfig c = lct::read_hf_config(dir);
    const auto st = lct::SafetensorsReader::open(dir);
    const std::string ref = dir + "/reference.h5";
    hid_t f = H5Fopen(ref.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0) << ref;
    {
      EXPECT_EQ(c.vocab_size, root_attr<int64_t>(f, "vocab_size", H5T_NATIVE_INT64));
      EXPECT_EQ(c.hidden_size, root_attr<int64_t>(f, "hidden_size", H5T_NATIVE_INT64));
      EXPECT_EQ(c.num_hidden_layers, root_attr<int64_t>(f, "num_hidden_layers", H5T_NATIVE_INT64));
      EXPECT_EQ(c.num_attention_heads, root_attr<int64_t>(f, "num_attention_heads", H5T_NATIVE_INT64));
      EXPECT_EQ(c.num_key_value_heads, root_attr<int64_t>(f, "num_key_value_heads", H5T_NATIVE_INT64));
      EXPECT_EQ(c.intermediate_size, root_attr<int64_t>(f, "intermediate_size", H5T_NATIVE_INT64));
      EXPECT_EQ(c.head_dim, root_attr<int64_t>(f, "head_dim", H5T_NATIVE_INT64));
      EXPECT_EQ(c.max_position_embeddings, root_attr<int64_t>(f, "max_position_embeddings", H5T_NATIVE_INT64));
      EXPECT_EQ(int64_t(c.tie_word_embeddings), root_attr<int64_t>(f, "tie_word_embeddings", H5T_NATIVE_INT64));
      EXPECT_EQ(c.rms_norm_eps, root_attr<double>(f, "rms_norm_eps", H5T_NATIVE_DOUBLE));
      EXPECT_EQ(c.rope_theta, root_attr<double>(f, "rope_theta", H5T_NATIVE_DOUBLE));
    }
    EXPECT_EQ(c.rope_scaling.rope_type, "none");

    const auto params = expected_params(c);
    EXPECT_EQ(st.tensors().size(), params.size());
    for (const auto& [name, shape] : params) {
      SCOPED_TRACE(name);
      ASSERT_TRUE(st.has(name));
      const auto& info = st.info(name);
      EXPECT_EQ(info.dtype, lct::StDType::F32);
      EXPECT_EQ(info.shape, shape);
      std::vector<float> v(size_t(info.numel()));
      st.read_f32(name, 0, info.numel(), v.data());
      const std::string ds_name = "/weights/" + name;
      hid_t ds = H5Dopen2(f, ds_name.c_str(), H5P_DEFAULT);
      ASSERT_GE(ds, 0);
      std::vector<double> want(v.size());
      EXPECT_EQ(H5Dget_storage_size(ds), v.size() * sizeof(double));
      ASSERT_GE(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, want.data()), 0);
      H5Dclose(ds);
      size_t mismatches = 0;
      for (size_t i = 0; i < v.size(); ++i) mismatches += double(v[i]) != want[i];
      EXPECT_EQ(mismatches, 0u);
      // A tensor-parallel style slice: the second half of the rows.
      if (shape.size() == 2 && shape[0] >= 2) {
        const int64_t row0 = shape[0] / 2, n = (shape[0] - row0) * shape[1];
        std::vector<float> part(static_cast<size_t>(n));
        st.read_f32(name, row0 * shape[1], n, part.data());
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(double(part[size_t(i)]), want[size_t(row0 * shape[1] + i)]);
      }
    }
    H5Fclose(f);
  }
}
