// lctrain's Llama against HF transformers' LlamaForCausalLM: logits, loss and every parameter
// gradient on the tiny reference models made by tools/make_reference.py (tests/data/hf/).
// fp32 training precision must agree with the float64 reference to 1e-5 (logits, loss) and 1e-4
// (gradients); the same code in double agrees to near machine precision.
#include <gtest/gtest.h>

#include "io/h5file.h"
#include "model/llama.h"
#include "test_util.h"

namespace lct {
namespace {

struct Reference {
  ModelConfig m;
  RopeConfig r;
  int64_t B = 0, T = 0;
  H5File file;
  explicit Reference(const std::string& dir) : file(dir + "/reference.h5", H5File::Read) {
    m.vocab_size = file.attr_i64("/", "vocab_size");
    m.dim = file.attr_i64("/", "hidden_size");
    m.n_layers = file.attr_i64("/", "num_hidden_layers");
    m.n_heads = file.attr_i64("/", "num_attention_heads");
    m.n_kv_heads = file.attr_i64("/", "num_key_value_heads");
    m.head_dim = file.attr_i64("/", "head_dim");
    m.ffn_dim = file.attr_i64("/", "intermediate_size");
    m.norm_eps = file.attr_f64("/", "rms_norm_eps");
    m.tie_embeddings = file.attr_i64("/", "tie_word_embeddings") != 0;
    r.theta = file.attr_f64("/", "rope_theta");
    B = file.attr_i64("/", "batch");
    T = file.attr_i64("/", "seq_len");
  }
};

template <class T>
void run_reference(const std::string& name, DType dtype, double tol_logits, double tol_grads) {
  Reference ref(test::data_dir() + "/hf/" + name);
  ModelShape s;
  s.micro_batch = ref.B;
  s.seq_len = ref.T;
  auto ops = make_cpu_ops(dtype, 16);
  Llama model(ref.m, ref.r, s, *ops, nullptr, nullptr);
  // Weights by HF name.
  std::vector<T> flat(size_t(model.table().total));
  for (const auto& p : model.table().specs) {
    std::vector<double> w = ref.file.read_f64("/weights/" + p.name);
    ASSERT_EQ(int64_t(w.size()), p.valid_rows * p.local_cols) << p.name;  // vocabulary padding stays zero
    for (size_t i = 0; i < w.size(); ++i) flat[size_t(p.offset) + i] = T(w[i]);
  }
  ops->from_host(model.params().flat, flat.data());
  MicroBatch mb;
  mb.inputs = ref.file.read_i32("/inputs");
  mb.targets = ref.file.read_i32("/targets");
  ops->zero(model.grads().flat);
  const double n = double(ref.B * ref.T);
  const double loss = model.forward_backward(mb, 1.0 / n) / n;
  const double ref_loss = ref.file.read_f64("/loss")[0];
  EXPECT_LT(std::abs(loss - ref_loss) / ref_loss, tol_logits) << name << " loss " << loss << " vs " << ref_loss;

  // Logits = final hidden x lm_head^T.
  const int64_t V = ref.m.vocab_size;
  std::vector<T> logits(size_t(ref.B * ref.T * V));
  Tensor lt(logits.data(), dtype, {ref.B * ref.T, V});
  ops->matmul_forward(lt, model.final_hidden(), model.lm_head());
  std::vector<double> ref_logits = ref.file.read_f64("/logits");
  EXPECT_LT(test::rel_error(logits, ref_logits), tol_logits) << name << " logits";

  const T* g = model.grads().flat.template data<T>();
  for (const auto& p : model.table().specs) {
    std::vector<double> rg = ref.file.read_f64("/grads/" + p.name);
    const int64_t valid = p.valid_rows * p.local_cols;
    std::vector<T> ours(g + p.offset, g + p.offset + valid);
    EXPECT_LT(test::rel_error(ours, rg), tol_grads) << name << " gradient of " << p.name;
    for (int64_t i = valid; i < p.local_numel(); ++i)
      ASSERT_EQ(g[p.offset + i], T(0)) << name << ": vocabulary padding of " << p.name << " got a gradient";
  }
}

class HfReference : public ::testing::TestWithParam<std::string> {};

TEST_P(HfReference, Fp32MatchesTransformers) { run_reference<float>(GetParam(), DType::F32, 1e-5, 1e-4); }
TEST_P(HfReference, Fp64MatchesTransformersClosely) { run_reference<double>(GetParam(), DType::F64, 1e-10, 1e-8); }

INSTANTIATE_TEST_SUITE_P(Models, HfReference, ::testing::Values("tiny_gqa2", "tiny_gqa4_tied", "tiny_mha"));

}  // namespace
}  // namespace lct
