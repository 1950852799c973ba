#include "ckpt/hf_convert.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "io/h5file.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/params.h"

namespace lct {
namespace fs = std::filesystem;

namespace {

// Files a user expects next to the weights, copied from the model the run started from.
const char* kCarryFiles[] = {"tokenizer.json",        "tokenizer_config.json", "special_tokens_map.json",
                             "tokenizer.model",       "generation_config.json", "chat_template.jinja",
                             "chat_template.json"};

}  // namespace

std::string export_to_hf(const std::string& checkpoint, const std::string& outdir, const ExportOptions& opt) {
  if (opt.dtype != "bf16" && opt.dtype != "fp32")
    throw InputError(str("--dtype ", opt.dtype, ": use bf16 or fp32"));
  const CheckpointMeta meta = read_checkpoint_meta_local(checkpoint);
  H5File f(checkpoint, H5File::Read);
  const ParamTable table = ParamTable::build(meta.model, 1, 0);
  // Streamed tensor by tensor: each is read from the checkpoint when its turn comes, so memory
  // holds one tensor (the largest bounds it), not the model (280 GB in fp32 for a 70B).
  std::vector<StTensorShape> tensors;
  int64_t largest = 0;
  for (const ParamSpec& p : table.specs) {
    tensors.push_back({p.name, p.is_vector ? std::vector<int64_t>{p.rows} : std::vector<int64_t>{p.rows, p.cols}});
    largest = std::max(largest, p.full_numel());
  }
  write_safetensors(outdir, tensors, opt.dtype == "bf16" ? StDType::BF16 : StDType::F32, opt.shard_bytes,
                    [&](size_t i, std::vector<float>& buf) {
                      buf.resize(size_t(table.specs[i].full_numel()));
                      f.read_f32_into("/model/" + table.specs[i].name, buf.data(), buf.size());
                      return buf.data();
                    });

  // config.json: start from the original model's config when the run began from one.
  HfLlamaConfig h;
  const std::string src = meta.init_from;
  const bool from_hf = !src.empty() && fs::is_directory(src) && fs::exists(fs::path(src) / "config.json");
  if (from_hf) h = read_hf_config(src);
  const ModelConfig& m = meta.model;
  h.vocab_size = m.vocab_size;
  h.hidden_size = m.dim;
  h.num_hidden_layers = m.n_layers;
  h.num_attention_heads = m.n_heads;
  h.num_key_value_heads = m.n_kv_heads;
  h.head_dim = m.head_dim;
  h.intermediate_size = m.ffn_dim;
  h.rms_norm_eps = m.norm_eps;
  h.tie_word_embeddings = m.tie_embeddings;
  const RopeConfig& r = meta.rope;
  h.rope_theta = r.theta;
  h.rope_scaling = HfRopeScaling();
  if (r.scaling != "none") {
    if (r.scaling == "ntk")
      throw InputError(str(checkpoint, ": rope.scaling = ntk has no transformers equivalent; export the trained ",
                           "theta instead (rope.scaling = none with theta = theta * factor^(d/(d-2)))"));
    h.rope_scaling.rope_type = r.scaling;
    h.rope_scaling.factor = r.factor;
    h.rope_scaling.low_freq_factor = r.low_freq_factor;
    h.rope_scaling.high_freq_factor = r.high_freq_factor;
    h.rope_scaling.original_max_position_embeddings = r.original_max_position_embeddings;
    h.rope_scaling.beta_fast = r.beta_fast;
    h.rope_scaling.beta_slow = r.beta_slow;
    h.rope_scaling.attention_factor = r.attention_factor;
  }
  h.max_position_embeddings = opt.max_position_embeddings > 0 ? opt.max_position_embeddings : meta.seq_len;
  if (r.scaling == "dynamic") {
    // transformers' dynamic NTK scales relative to max_position_embeddings, lctrain relative to the
    // original length: the export must carry that length there, or HF computes other frequencies.
    const int64_t orig = r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings : r.base_context;
    if (opt.max_position_embeddings > 0 && opt.max_position_embeddings != orig)
      throw InputError(str(checkpoint, ": rope.scaling = dynamic scales relative to the original length ", orig,
                           ", which transformers reads from max_position_embeddings; --max-position-embeddings ",
                           opt.max_position_embeddings, " would change the model (leave it out)"));
    h.max_position_embeddings = orig;
  }
  h.torch_dtype = opt.dtype == "bf16" ? "bfloat16" : "float32";
  write_hf_config(outdir, h);

  std::string report = str("wrote ", outdir, ": ", tensors.size(), " tensors (", opt.dtype, "), rope_theta ",
                           format_number(h.rope_theta), ", max_position_embeddings ", h.max_position_embeddings,
                           "; largest tensor ", largest * 4, " bytes in fp32");
  if (from_hf) {
    for (const char* name : kCarryFiles) {
      const fs::path s = fs::path(src) / name;
      if (fs::exists(s)) {
        fs::copy_file(s, fs::path(outdir) / name, fs::copy_options::overwrite_existing);
        report += str(", ", name);
      }
    }
  } else {
    report += " (no HF model to copy tokenizer files from: the run did not start from one)";
  }
  return report;
}

ModelConfig model_config_of(const HfLlamaConfig& h) {
  ModelConfig m;
  m.vocab_size = h.vocab_size;
  m.dim = h.hidden_size;
  m.n_layers = h.num_hidden_layers;
  m.n_heads = h.num_attention_heads;
  m.n_kv_heads = h.num_key_value_heads;
  m.head_dim = h.head_dim;
  m.ffn_dim = h.intermediate_size;
  m.norm_eps = h.rms_norm_eps;
  m.tie_embeddings = h.tie_word_embeddings;
  return m;
}

std::string import_from_hf(const std::string& dir, const std::string& checkpoint) {
  const HfLlamaConfig h = read_hf_config(dir);
  const ModelConfig m = model_config_of(h);
  SafetensorsReader st = SafetensorsReader::open(dir);
  const ParamTable table = ParamTable::build(m, 1, 0);
  const std::string tmp = checkpoint + ".tmp";
  {
    H5File f(tmp, H5File::Create);
    f.make_groups("/model");
    for (const ParamSpec& p : table.specs) {
      if (!st.has(p.name)) throw InputError(str(dir, ": tensor '", p.name, "' is missing from the safetensors"));
      std::vector<int64_t> want = p.is_vector ? std::vector<int64_t>{p.rows} : std::vector<int64_t>{p.rows, p.cols};
      if (st.info(p.name).shape != want) throw InputError(str(dir, ": tensor '", p.name, "' has the wrong shape"));
      std::vector<float> v(static_cast<size_t>(p.full_numel()));  // one tensor in memory at a time
      st.read_f32(p.name, 0, p.full_numel(), v.data());
      std::vector<hsize_t> dims(want.begin(), want.end());
      hid_t sp = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
      hid_t ds = H5Dcreate2(f.id(), ("/model/" + p.name).c_str(), H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
      herr_t ok = ds >= 0 ? H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) : -1;
      if (ds >= 0) H5Dclose(ds);
      H5Sclose(sp);
      if (ok < 0) throw Error(kExitFailure, str("cannot write ", p.name, " to ", tmp));
    }
    RopeConfig r;
    r.theta = h.rope_theta;
    r.base_theta = h.rope_theta;
    r.base_context = h.max_position_embeddings;
    if (h.rope_scaling.rope_type != "none") {
      r.scaling = h.rope_scaling.rope_type;
      r.factor = h.rope_scaling.factor;
      r.low_freq_factor = h.rope_scaling.low_freq_factor;
      r.high_freq_factor = h.rope_scaling.high_freq_factor;
      r.original_max_position_embeddings = h.rope_scaling.original_max_position_embeddings;
      r.beta_fast = h.rope_scaling.beta_fast;
      r.beta_slow = h.rope_scaling.beta_slow;
      r.attention_factor = h.rope_scaling.attention_factor;
    }
    CheckpointHeader hd;
    hd.model = m;
    hd.rope = r;
    hd.seq_len = h.max_position_embeddings;
    hd.deck_text = "# imported by lcconvert from-hf " + dir;
    hd.init_from = fs::absolute(dir).string();
    hd.optimizer = "none";
    hd.run_name = "imported";
    hd.state.stage = 0;  // a completed stage 0: resuming from it starts stage 1
    write_checkpoint_header(f, hd);
  }
  fs::rename(tmp, checkpoint);
  int64_t largest = 0;
  for (const ParamSpec& p : table.specs) largest = std::max(largest, p.full_numel());
  return str("wrote ", checkpoint, ": ", table.specs.size(), " tensors from ", dir, " (one at a time; largest ",
             largest * 4, " bytes in fp32)");
}

std::vector<float> checkpoint_logits(const std::string& checkpoint, const std::vector<int32_t>& tokens) {
  const CheckpointMeta meta = read_checkpoint_meta_local(checkpoint);
  if (tokens.empty()) throw InputError("logits: no tokens given");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= meta.model.vocab_size)
      throw InputError(str("token ", i + 1, " of ", tokens.size(), " is id ", tokens[i], ", outside the vocabulary of ",
                           checkpoint, " (ids 0..", meta.model.vocab_size - 1, ", model.vocab_size = ",
                           meta.model.vocab_size, ")"));
  const RopeConfig& r = meta.rope;
  ModelShape s;
  s.micro_batch = 1;
  s.seq_len = int64_t(tokens.size());
  auto ops = make_cpu_ops(DType::F32, 64);
  Llama model(meta.model, r, s, *ops, nullptr, nullptr);
  load_model_weights(model, *ops, checkpoint);
  MicroBatch mb;
  mb.inputs = tokens;
  mb.targets.assign(tokens.size(), -1);
  model.forward(mb);
  const int64_t V = meta.model.vocab_size, T = int64_t(tokens.size());
  std::vector<float> logits(static_cast<size_t>(T * V));
  ops->matmul_forward(Tensor(logits.data(), DType::F32, {T, V}), model.final_hidden(), model.lm_head());
  return logits;
}

}  // namespace lct
