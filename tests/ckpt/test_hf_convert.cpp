// Hugging Face import/export: the tiny HF reference models (tests/data/hf, made by transformers)
// load through model.init_from and through lcconvert from-hf and reproduce transformers' logits;
// export then re-import is bit-exact; a model trained from one of them with another RoPE (theta and
// yarn scaling) exports that trained RoPE and its trained weights.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mpi.h>

#include "ckpt/checkpoint.h"
#include "ckpt/hf_convert.h"
#include "io/h5file.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "deck/deck.h"
#include "train/trainer.h"
#include "train/weights.h"

namespace lct {
namespace {
namespace fs = std::filesystem;

std::string hf(const std::string& name) { return test::data_dir() + "/hf/" + name; }

class HfConvert : public ::testing::TestWithParam<std::string> {};

// Logits of the first reference sequence from a checkpoint vs transformers (float64 reference).
void expect_reference_logits(const std::string& checkpoint, const std::string& name) {
  H5File ref(hf(name) + "/reference.h5", H5File::Read);
  const std::vector<int32_t> inputs = ref.read_i32("/inputs");
  const int64_t T = ref.attr_i64("/", "seq_len"), V = ref.attr_i64("/", "vocab_size");
  std::vector<int32_t> seq(inputs.begin(), inputs.begin() + T);
  std::vector<float> ours = checkpoint_logits(checkpoint, seq);
  std::vector<double> all = ref.read_f64("/logits");
  std::vector<double> want(all.begin(), all.begin() + T * V);
  EXPECT_LT(test::rel_error(ours, want), 1e-5) << name;
}

TEST_P(HfConvert, ImportReproducesTransformersLogits) {
  const std::string dir = test::scratch_dir("hf_import_" + GetParam());
  const std::string ck = dir + "/imported.h5";
  import_from_hf(hf(GetParam()), ck);
  expect_reference_logits(ck, GetParam());
  CheckpointMeta meta = read_checkpoint_meta_local(ck);
  EXPECT_TRUE(meta.state.stage_complete()) << "an imported model counts as a finished stage 0";
}

TEST_P(HfConvert, InitFromLoadsTheSameWeights) {
  // load_hf_weights is what model.init_from uses (each rank reads its tp slices).
  H5File ref(hf(GetParam()) + "/reference.h5", H5File::Read);
  const ModelConfig m = model_config_of(read_hf_config(hf(GetParam())));
  for (int tp : {1, 2}) {  // each tp rank reads exactly its slices
    if (m.n_kv_heads % tp) continue;
    for (int tp_rank = 0; tp_rank < tp; ++tp_rank) {
      ParamTable table = ParamTable::build(m, tp, tp_rank);
      std::vector<float> p = read_hf_params(table, hf(GetParam()));
      for (const ParamSpec& spec : table.specs) {
        std::vector<double> full = ref.read_f64("/weights/" + spec.name);
        for (int64_t rr = spec.valid_rows; rr < spec.local_rows; ++rr)  // vocabulary padding
          for (int64_t c = 0; c < spec.local_cols; ++c)
            ASSERT_EQ(p[size_t(spec.offset + rr * spec.local_cols + c)], 0.0f) << spec.name << " padding row " << rr;
        for (int64_t rr = 0; rr < spec.valid_rows; ++rr)
          for (int64_t c = 0; c < spec.local_cols; ++c)
            ASSERT_EQ(double(p[size_t(spec.offset + rr * spec.local_cols + c)]),
                      full[size_t((spec.row0 + rr) * spec.cols + spec.col0 + c)])
                << spec.name << " tp " << tp << " rank " << tp_rank;
      }
    }
  }
}

// A ZeRO-3 rank reads only its shard at model.init_from: for every rank of dp x cp = 4 and each tp
// rank, read_hf_ranges over its shard ranges returns exactly those elements of its tp slice.
TEST_P(HfConvert, InitFromReadsOnlyTheShard) {
  const ModelConfig m = model_config_of(read_hf_config(hf(GetParam())));
  for (int tp : {1, 2}) {
    if (m.n_kv_heads % tp) continue;
    for (int tp_rank = 0; tp_rank < tp; ++tp_rank) {
      const ParamTable table = ParamTable::build(m, tp, tp_rank, 4);
      const std::vector<float> all = read_hf_params(table, hf(GetParam()));
      int64_t covered = 0;
      for (int r = 0; r < 4; ++r) {
        std::vector<FlatRange> ranges;
        for (const ParamUnit& u : table.units) ranges.push_back({u.begin + r * u.size / 4, u.size / 4});
        const std::vector<float> mine = read_hf_ranges(table, hf(GetParam()), ranges);
        int64_t at = 0;
        for (const FlatRange& fr : ranges)
          for (int64_t i = 0; i < fr.len; ++i, ++at)
            ASSERT_EQ(mine[size_t(at)], all[size_t(fr.begin + i)]) << "tp " << tp << " rank " << r << " element " << fr.begin + i;
        covered += at;
      }
      EXPECT_EQ(covered, table.total);
    }
  }
}

TEST_P(HfConvert, ExportThenReimportIsBitExact) {
  const std::string dir = test::scratch_dir("hf_roundtrip_" + GetParam());
  const std::string a = dir + "/a.h5", b = dir + "/b.h5", out = dir + "/hf_out";
  import_from_hf(hf(GetParam()), a);
  ExportOptions opt;
  opt.dtype = "fp32";
  opt.shard_bytes = 20000;  // force several shards and an index
  export_to_hf(a, out, opt);
  EXPECT_TRUE(fs::exists(out + "/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_TRUE(fs::exists(out + "/generation_config.json")) << "copied from the model the run started from";
  import_from_hf(out, b);
  H5File fa(a, H5File::Read), fb(b, H5File::Read);
  for (const auto& name : fa.list("/model")) EXPECT_EQ(fa.read_f32("/model/" + name), fb.read_f32("/model/" + name)) << name;
  HfLlamaConfig h = read_hf_config(out);
  HfLlamaConfig orig = read_hf_config(hf(GetParam()));
  EXPECT_EQ(h.rope_theta, orig.rope_theta);
  EXPECT_EQ(h.num_key_value_heads, orig.num_key_value_heads);
  EXPECT_EQ(h.tie_word_embeddings, orig.tie_word_embeddings);
  // bf16 export: the default for users; values are the bf16 roundings of the fp32 weights.
  export_to_hf(a, dir + "/hf_bf16", ExportOptions());
  SafetensorsReader st = SafetensorsReader::open(dir + "/hf_bf16");
  EXPECT_EQ(st.info("model.embed_tokens.weight").dtype, StDType::BF16);
}

INSTANTIATE_TEST_SUITE_P(Models, HfConvert, ::testing::Values("tiny_gqa2", "tiny_gqa4_tied", "tiny_mha"));

// Trains tiny_gqa2 (theta 50000, no scaling) for two steps with theta 200000 and yarn x4, in this
// process (1 rank), and exports the result: config.json must carry the trained RoPE and the
// training length, the safetensors the trained weights (not the original ones), and re-importing
// the export gives the trained model's logits bit for bit.
// tiny_gqa2 trained for two steps at 128 tokens with the given [rope] lines, in this process (1 rank):
// the step-2 checkpoint.
std::string train_tiny_gqa2(const std::string& dir, const std::string& rope) {
  const std::string corpus = dir + "/tokens.bin", src = hf("tiny_gqa2");
  {
    const int64_t n = 4096;
    int32_t header[256] = {20240520, 1, int32_t(n)};
    std::vector<uint16_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) t[size_t(i)] = uint16_t((i * 7 + i / 13) % 96);
    std::ofstream f(corpus, std::ios::binary);
    f.write(reinterpret_cast<const char*>(header), sizeof header);
    f.write(reinterpret_cast<const char*>(t.data()), std::streamsize(t.size() * 2));
  }
  const std::string deck_text = "[run]\nout_dir = " + dir + "/run\n[model]\ninit_from = " + src + "\n[rope]\n" + rope +
                                "[train]\nseq_len = 128\nmicro_batch = 1\ngrad_accum = 1\nsteps = 2\nlr = 1e-3\n"
                                "warmup_steps = 1\n[data]\ntrain = " + corpus + "\n";
  EXPECT_EQ(run_training(Deck::from_text(deck_text, "trained.deck"), MPI_COMM_WORLD, RunOptions()), 0);
  return dir + "/run/checkpoints/step_00000002.h5";
}

TEST(HfConvertTrained, ExportCarriesTheTrainedRope) {
  const std::string dir = test::scratch_dir("hf_export_trained");
  const std::string src = hf("tiny_gqa2");
  const std::string trained =
      train_tiny_gqa2(dir, "theta = 200000\nscaling = yarn\nfactor = 4\noriginal_max_position_embeddings = 32\n");
  ASSERT_TRUE(fs::exists(trained));

  ExportOptions opt;
  opt.dtype = "fp32";
  const std::string out = dir + "/hf_out";
  export_to_hf(trained, out, opt);
  const HfLlamaConfig h = read_hf_config(out), orig = read_hf_config(src);
  ASSERT_EQ(orig.rope_theta, 50000.0);
  EXPECT_EQ(h.rope_theta, 200000.0);
  EXPECT_EQ(h.rope_scaling.rope_type, "yarn");
  EXPECT_EQ(h.rope_scaling.factor, 4.0);
  EXPECT_EQ(h.rope_scaling.original_max_position_embeddings, 32);
  EXPECT_EQ(h.max_position_embeddings, 128) << "the training length";
  EXPECT_TRUE(fs::exists(out + "/generation_config.json")) << "copied from the model the run started from";

  // The trained weights, not tiny_gqa2's.
  H5File ck(trained, H5File::Read);
  SafetensorsReader st = SafetensorsReader::open(out), st0 = SafetensorsReader::open(src);
  size_t changed = 0;
  for (const auto& name : ck.list("/model")) {
    const std::vector<float> w = ck.read_f32("/model/" + name);
    std::vector<float> e(w.size()), o(w.size());
    st.read_f32(name, 0, int64_t(w.size()), e.data());
    st0.read_f32(name, 0, int64_t(w.size()), o.data());
    EXPECT_EQ(e, w) << name;
    changed += e != o;
  }
  EXPECT_GT(changed, 0u) << "the export holds the original weights: nothing was trained";

  // Re-imported, the export is the trained model: same RoPE, same logits, bit for bit.
  const std::string back = dir + "/reimported.h5";
  import_from_hf(out, back);
  std::vector<int32_t> seq(64);
  for (size_t i = 0; i < seq.size(); ++i) seq[i] = int32_t((i * 5) % 96);
  EXPECT_EQ(checkpoint_logits(back, seq), checkpoint_logits(trained, seq));
}

// Dynamic NTK: transformers scales relative to max_position_embeddings, lctrain relative to the
// original length. The export carries the original length there (it wrote the training length:
// at 64 tokens HF scaled from 128, lctrain from 32), so the re-import (which reads the length as HF
// does) gives the trained model's logits past the original length.
TEST(HfConvertTrained, DynamicScalingExportsTheOriginalLength) {
  const std::string dir = test::scratch_dir("hf_export_dynamic");
  const std::string trained =
      train_tiny_gqa2(dir, "theta = 50000\nscaling = dynamic\nfactor = 4\noriginal_max_position_embeddings = 32\n");
  ASSERT_TRUE(fs::exists(trained));
  ExportOptions opt;
  opt.dtype = "fp32";
  export_to_hf(trained, dir + "/hf_out", opt);
  EXPECT_EQ(read_hf_config(dir + "/hf_out").max_position_embeddings, 32);
  import_from_hf(dir + "/hf_out", dir + "/back.h5");
  std::vector<int32_t> seq(64);
  for (size_t i = 0; i < seq.size(); ++i) seq[i] = int32_t((i * 5) % 96);
  EXPECT_EQ(checkpoint_logits(dir + "/back.h5", seq), checkpoint_logits(trained, seq));
  opt.max_position_embeddings = 128;
  try {
    export_to_hf(trained, dir + "/hf_out2", opt);
    ADD_FAILURE() << "an export that changes the dynamic scaling";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("rope.scaling = dynamic scales relative to the original length 32"),
              std::string::npos)
        << e.what();
  }
}

TEST(HfConvertErrors, LogitsRefuseTokenIdsOutsideTheVocabulary) {
  const std::string dir = test::scratch_dir("hf_logits_ids");
  const std::string ck = dir + "/imported.h5";
  import_from_hf(hf("tiny_gqa2"), ck);
  const int64_t V = read_checkpoint_meta_local(ck).model.vocab_size;
  EXPECT_NO_THROW(checkpoint_logits(ck, {1, int32_t(V - 1)}));
  EXPECT_THROW(checkpoint_logits(ck, {1, int32_t(V)}), InputError);
  // lcconvert says which token, its id and the vocabulary, and exits 2.
  const test::CommandResult r = test::run_command(test::bin_dir() + "/lcconvert logits " + ck + " " + dir +
                                                  "/logits.h5 --tokens 1," + std::to_string(V));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("token 2 of 2 is id " + std::to_string(V) + ", outside the vocabulary of " + ck + " (ids 0.." +
                          std::to_string(V - 1) + ", model.vocab_size = " + std::to_string(V) + ")"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir + "/logits.h5"));
  EXPECT_EQ(test::run_command(test::bin_dir() + "/lcconvert logits " + ck + " " + dir + "/logits.h5 --tokens 1,99999999999")
                .exit_code,
            2);
}

// lcconvert streams: from-hf and to-hf hold one tensor at a time, so on a model of several shards
// (185 MB in fp32, 7 bf16 shards) their peak RSS stays within the largest tensor plus one shard
// above what converting the tiny reference model takes; holding the model (the code before
// streaming, hf_convert.cpp) would need all 185 MB. The round trip keeps every value.
int64_t peak_rss_of(const test::CommandResult& r) {
  const size_t at = r.output.find("peak RSS ");
  return at == std::string::npos ? -1 : std::stoll(r.output.substr(at + 9));
}

TEST(HfConvertStreaming, PeakMemoryIsOneTensorPlusOneShard) {
  const std::string dir = test::scratch_dir("hf_streaming");
  HfLlamaConfig h;
  h.vocab_size = 8192;
  h.hidden_size = 512;
  h.num_hidden_layers = 12;
  h.num_attention_heads = 8;
  h.num_key_value_heads = 4;
  h.head_dim = 64;
  h.intermediate_size = 1536;
  h.max_position_embeddings = 1024;
  h.torch_dtype = "bfloat16";
  const ModelConfig m = model_config_of(h);
  const ParamTable table = ParamTable::build(m, 1, 0);
  int64_t largest = 0, total = 0;
  {  // the HF model, written by the (in-memory) writer in this process
    std::vector<std::vector<float>> data;
    std::vector<StWriteTensor> ts;
    for (const ParamSpec& p : table.specs) {
      data.emplace_back(size_t(p.full_numel()));
      for (size_t i = 0; i < data.back().size(); ++i) data.back()[i] = float(int64_t((i * 7 + p.offset) % 251) - 125) / 256;
      ts.push_back({p.name, p.is_vector ? std::vector<int64_t>{p.rows} : std::vector<int64_t>{p.rows, p.cols},
                    data.back().data()});
      largest = std::max(largest, p.full_numel() * 4);
      total += p.full_numel() * 4;
    }
    write_safetensors(dir + "/hf", ts, StDType::BF16, 16'000'000);
    write_hf_config(dir + "/hf", h);
  }
  ASSERT_TRUE(fs::exists(dir + "/hf/model.safetensors.index.json")) << "the model must have several shards";
  const std::string lc = test::bin_dir() + "/lcconvert ";
  const auto tiny = test::run_command(lc + "from-hf " + hf("tiny_gqa2") + " " + dir + "/tiny.h5");
  ASSERT_EQ(tiny.exit_code, 0) << tiny.output;
  const int64_t base = peak_rss_of(tiny), shard = 16'000'000;
  ASSERT_GT(base, 0) << tiny.output;
  const auto in = test::run_command(lc + "from-hf " + dir + "/hf " + dir + "/big.h5");
  ASSERT_EQ(in.exit_code, 0) << in.output;
  const auto out = test::run_command(lc + "to-hf " + dir + "/big.h5 " + dir + "/out --dtype bf16 --shard-bytes " +
                                     std::to_string(shard));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  for (const auto* r : {&in, &out}) {
    const int64_t peak = peak_rss_of(*r);
    std::printf("peak RSS %.1f MB (tiny model %.1f MB, largest tensor %.1f MB, shard %.1f MB, model %.1f MB fp32)\n",
                peak / 1e6, base / 1e6, largest / 1e6, shard / 1e6, total / 1e6);
    EXPECT_LE(peak, base + largest + shard) << r->output;
    EXPECT_LT(peak - base, total / 2) << r->output;
  }
  // Every value survives (bf16 in, bf16 out: exact).
  SafetensorsReader a = SafetensorsReader::open(dir + "/hf"), b = SafetensorsReader::open(dir + "/out");
  ASSERT_GT(b.tensors().size(), 0u);
  for (const ParamSpec& p : table.specs) {
    std::vector<float> x(size_t(p.full_numel())), y(size_t(p.full_numel()));
    a.read_f32(p.name, 0, p.full_numel(), x.data());
    b.read_f32(p.name, 0, p.full_numel(), y.data());
    ASSERT_EQ(x, y) << p.name;
  }
}

TEST(HfConvertErrors, BadInputsAreInputErrors) {
  const std::string dir = test::scratch_dir("hf_errors");
  EXPECT_THROW(import_from_hf(dir + "/nothing", dir + "/x.h5"), InputError);
  EXPECT_THROW(export_to_hf(dir + "/missing.h5", dir + "/out", ExportOptions()), InputError);
  ExportOptions bad;
  bad.dtype = "fp8";
  EXPECT_THROW(export_to_hf(dir + "/missing.h5", dir + "/out", bad), InputError);
}

}  // namespace
}  // namespace lct
