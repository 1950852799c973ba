#include "deck/schema.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace lct {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

KeySpec I(const char* key, const char* def, double min, double max, const char* doc) {
  return KeySpec{key, KeyType::Int, def, doc, min, max, {}};
}
KeySpec F(const char* key, const char* def, double min, double max, const char* doc) {
  return KeySpec{key, KeyType::Float, def, doc, min, max, {}};
}
KeySpec B(const char* key, const char* def, const char* doc) { return KeySpec{key, KeyType::Bool, def, doc, -kInf, kInf, {}}; }
KeySpec S(const char* key, const char* def, const char* doc) { return KeySpec{key, KeyType::String, def, doc, -kInf, kInf, {}}; }
KeySpec P(const char* key, const char* def, const char* doc) { return KeySpec{key, KeyType::Path, def, doc, -kInf, kInf, {}}; }
KeySpec L(const char* key, const char* def, const char* doc) { return KeySpec{key, KeyType::List, def, doc, -kInf, kInf, {}}; }
KeySpec C(const char* key, const char* def, std::vector<std::string> choices, const char* doc) {
  return KeySpec{key, KeyType::Choice, def, doc, -kInf, kInf, std::move(choices)};
}
KeySpec T(KeyType t, const char* key, const char* def, double min, double max, const char* doc) {
  return KeySpec{key, t, def, doc, min, max, {}};
}

std::vector<KeySpec> build() {
  return {
      // [run]
      S("run.name", "lctrain", "Run name, shown in logs and recorded in checkpoints."),
      P("run.out_dir", "out", "Output folder: effective.deck, metrics.jsonl, layout.json, checkpoints/, eval results."),
      C("run.device", "cpu", {"cpu", "cuda"}, "Compute backend: cpu (Eigen + OpenMP, fp32) or cuda (bf16 compute, fp32 master weights)."),
      I("run.seed", "1234", 0, 9.2e18, "Seed for weight initialisation, data order and evaluation prompts."),
      F("run.hang_timeout", "600", 0, kInf, "Seconds a step may make no progress before the watchdog ends the job (0 = off)."),
      I("run.attention_tile", "64", 1, 4096, "Rows of Q and of K/V per attention tile on the cpu backend."),

      // [model]
      I("model.vocab_size", "256", 2, 1e9, "Vocabulary size (embedding rows)."),
      I("model.make_vocab_size_divisible_by", "128", 1, 1e6, "Pad each tensor-parallel rank's embedding / LM-head rows to a multiple of this (Megatron's name: the padded vocabulary is a multiple of it x tp); padded rows are zero, their logits masked, and checkpoints/exports hold the real vocab_size rows."),
      I("model.dim", "64", 1, 1e6, "Hidden size (HF hidden_size)."),
      I("model.n_layers", "2", 1, 1e4, "Transformer blocks (HF num_hidden_layers)."),
      I("model.n_heads", "4", 1, 1e4, "Query heads (HF num_attention_heads)."),
      I("model.n_kv_heads", "0", 0, 1e4, "Key/value heads for grouped-query attention (0 = n_heads)."),
      I("model.head_dim", "0", 0, 1e4, "Per-head size (0 = dim / n_heads); must be even for RoPE."),
      I("model.ffn_dim", "0", 0, 1e7, "SwiGLU hidden size (HF intermediate_size; 0 = 8*dim/3 rounded up to a multiple of 32)."),
      F("model.norm_eps", "1e-5", 0, 1, "RMSNorm epsilon (HF rms_norm_eps)."),
      B("model.tie_embeddings", "false", "Share the embedding matrix with the LM head (HF tie_word_embeddings)."),
      P("model.init_from", "", "Initialise from an HF model directory (config.json + safetensors) or an lctrain checkpoint; empty = random init."),
      F("model.init_std", "0.02", 0, 10, "Standard deviation of the random initialisation of matrices."),
      C("model.attention_impl", "own", {"own", "cudnn"}, "Attention kernels on cuda: our own or cuDNN's fused attention."),

      // [rope]
      T(KeyType::NumberOrAuto, "rope.theta", "10000", 1, kInf, "RoPE base; 'auto' = base_theta^(ln(T/2pi)/ln(base_context/2pi)) for the stage's seq_len T (Liu et al. 2023)."),
      T(KeyType::Number, "rope.base_theta", "500000", 1, kInf, "Pretrained model's RoPE base (used by theta = auto; taken from init_from when present)."),
      I("rope.base_context", "8192", 2, 1e12, "Pretrained model's context length (used by theta = auto; taken from init_from when present)."),
      C("rope.scaling", "none", {"none", "linear", "dynamic", "ntk", "llama3", "yarn"}, "RoPE scaling type (HF transformers' definitions; ntk = static NTK-aware closed form)."),
      F("rope.factor", "1", 1, kInf, "Scaling factor for linear, dynamic, ntk, llama3 and yarn."),
      F("rope.low_freq_factor", "1", 0, kInf, "llama3 scaling: low_freq_factor."),
      F("rope.high_freq_factor", "4", 0, kInf, "llama3 scaling: high_freq_factor."),
      I("rope.original_max_position_embeddings", "0", 0, 1e12, "Context the scaling is relative to (0 = rope.base_context)."),
      F("rope.beta_fast", "32", 0, kInf, "yarn: beta_fast."),
      F("rope.beta_slow", "1", 0, kInf, "yarn: beta_slow."),
      F("rope.attention_factor", "0", 0, kInf, "yarn: cos/sin scale (0 = 0.1 ln(factor) + 1)."),

      // [train]
      I("train.seq_len", "256", 2, 1e12, "Tokens per sample (context length of this stage)."),
      I("train.micro_batch", "1", 1, 1e6, "Sequences per micro-batch on each data-parallel replica."),
      I("train.grad_accum", "1", 1, 1e6, "Micro-batches accumulated per optimizer step."),
      I("train.steps", "100", 0, 1e12, "Optimizer steps in this stage (step numbers in logs and checkpoints are global)."),
      F("train.lr", "3e-4", 0, kInf, "Peak learning rate."),
      C("train.lr_schedule", "cosine", {"constant", "cosine", "linear"}, "Decay after warmup, to min_lr at the stage's last step."),
      I("train.warmup_steps", "0", 0, 1e12, "Linear warmup steps from 0 to lr (each stage has its own)."),
      F("train.min_lr", "0", 0, kInf, "Learning rate at the end of the decay."),
      F("train.grad_clip", "1.0", 0, kInf, "Clip the global gradient norm to this value (0 = off)."),
      C("train.recompute", "none", {"none", "layer"}, "Activation recompute: keep only each layer's input and recompute the rest in backward."),
      C("train.offload", "none", {"none", "optimizer", "activations", "both"}, "Move state to host memory (DeepSpeed's offload_optimizer / Megatron's activation offloading): optimizer = fp32 master weights and AdamW moments live in host memory and the update runs on the CPU (ZeRO-Offload); activations = the layer inputs train.recompute = layer keeps go to host memory after the forward and come back before each layer's backward, asynchronously (needs recompute = layer); both."),
      I("train.log_every", "1", 1, 1e12, "Print a progress line every this many steps (metrics.jsonl gets every step)."),
      B("train.carry_optimizer", "false", "Keep AdamW moments from the previous stage (default: reset, as a fresh run from the previous stage)."),

      // [optim]
      C("optim.name", "adamw", {"adamw", "sgd"}, "Optimizer."),
      F("optim.beta1", "0.9", 0, 1, "AdamW beta1."),
      F("optim.beta2", "0.95", 0, 1, "AdamW beta2."),
      F("optim.eps", "1e-8", 0, 1, "AdamW epsilon."),
      F("optim.weight_decay", "0.1", 0, kInf, "Decoupled weight decay (none on norm weights)."),

      // [data]
      L("data.train", "", "Training data: files, globs or directories (comma-separated); llm.c shards, Megatron .idx/.bin, lctrain HDF5. A blend puts a weight before each dataset (Megatron's form): '0.7 web/*.bin, 0.3 chat.h5' draws those fractions of the samples from each."),
      L("data.valid", "", "Validation data, same forms as data.train (empty = none)."),
      C("data.format", "auto", {"auto", "llmc", "megatron", "hdf5"}, "Token file format (auto = detect from content)."),
      I("data.eod_token", "-1", -1, 2e9, "Token joining documents (-1 = from the file's attributes, if any); it ends the document it follows."),
      I("data.bos_token", "-1", -1, 2e9, "Token that begins each document (llm.c and Llama-3 data), for the document flags below (-1 = none)."),
      B("data.reset_attention_mask", "false", "Attention stays inside each packed document (Megatron's reset_attention_mask): documents end at data.eod_token or begin at data.bos_token."),
      B("data.reset_position_ids", "false", "RoPE positions restart at 0 with each document (Megatron's reset_position_ids)."),
      B("data.eod_mask_loss", "false", "No loss on the last token of each document, whose target is the next document's first (Megatron's eod_mask_loss: where the input is the EOD)."),
      B("data.shuffle", "true", "Shuffle samples each epoch (seeded by run.seed)."),
      I("data.prefetch", "2", 0, 64, "Steps of samples read ahead by a background thread."),
      I("data.valid_every", "0", 0, 1e12, "Evaluate the validation loss every this many steps (0 = only at the end when data.valid is set)."),
      I("data.valid_samples", "8", 1, 1e9, "Validation samples per evaluation."),
      S("data.tokenizer", "bytes", "Tokenizer for text inputs: 'bytes' or a path to an HF tokenizer.json."),

      // [parallel]
      I("parallel.tp", "1", 1, 1e6, "Tensor-parallel ranks (adjacent ranks, inside a node)."),
      I("parallel.cp", "1", 1, 1e6, "Context-parallel (ring attention) ranks."),
      T(KeyType::Auto, "parallel.dp", "auto", 1, 1e9, "Data-parallel replicas ('auto' = world size / (tp * cp))."),
      I("parallel.zero", "0", 0, 3, "ZeRO stage (DeepSpeed's zero_optimization.stage), sharding over dp x cp one unit (embedding, each layer, final norm + LM head) at a time: 1 = fp32 master weights and optimizer state; 2 = also gradients, reduce-scattered to their owner as each layer's backward ends; 3 = also the weights, all-gathered before each layer's forward and backward (the next layer's prefetched) and released after."),
      I("parallel.ranks_per_node", "0", 0, 1e6, "Ranks per node (0 = detect with MPI_Comm_split_type); set it to emulate nodes."),
      T(KeyType::IntList, "parallel.rail_map", "", 0, 1e6, "Rail (NIC) of each local rank index, comma-separated (empty = local index)."),
      B("parallel.sequence_parallel", "true", "Megatron sequence parallelism for token-local work when tp > 1."),
      C("parallel.cp_sharding", "auto", {"auto", "zigzag", "doc_zigzag", "contiguous"}, "Sequence chunks per cp rank: zigzag (chunks r and 2cp-1-r, causal load balance), doc_zigzag (each document padded to a multiple of 2cp and zigzagged on its own, as Transformer Engine's THD format; needs data.reset_attention_mask), contiguous (for comparison); auto = doc_zigzag with data.reset_attention_mask (the better balance, docs/parallel.md), else zigzag."),
      C("parallel.device_comm", "nccl", {"nccl", "mpi"}, "How device buffers travel on run.device = cuda: nccl, or mpi (staged through host memory: several ranks on one GPU, clusters without NCCL)."),
      C("parallel.cp_comm_type", "p2p", {"p2p", "a2a", "a2a+p2p"}, "How context parallelism exchanges attention data (Megatron's names): p2p = ring attention over the cp ranks; a2a = DeepSpeed-Ulysses all-to-all over the cp ranks (sequence shards to head shards and back; the cp ranks must sit in one node); a2a+p2p = all-to-all over U ranks inside a node x ring attention over R positions across nodes (parallel.hierarchical_cp_sizes = U,R). The all-to-all size U must divide n_heads / tp; it and n_kv_heads / tp must divide one another (K/V heads are replicated when U is larger); tp x U must fit in a node."),
      T(KeyType::IntList, "parallel.hierarchical_cp_sizes", "", 1, 1e6, "U,R for parallel.cp_comm_type = a2a+p2p (required there): U all-to-all ranks (adjacent, inside a node) x R ring positions, U x R = parallel.cp. For a2a it may be given as cp,1 and for p2p as 1,cp; anything else is an error."),
      C("parallel.ring_order", "aware", {"aware", "naive"}, "Order of ranks around the cp ring: network-aware (same node, same rail) or plain rank order."),

      // [checkpoint]
      I("checkpoint.every", "0", 0, 1e12, "Save every this many steps (0 = only at stage ends and on signals)."),
      B("checkpoint.final", "true", "Save a checkpoint at the end of the last stage (false: benchmarks; earlier stages always save theirs, the next stage starts from it)."),
      I("checkpoint.keep_last", "2", 1, 1e6, "Complete checkpoints of this run to keep (older ones of the same run are deleted after each save; the newest and the one just written never are, nor another run's files)."),
      P("checkpoint.resume", "auto", "auto (newest valid checkpoint in out_dir; refused when it belongs to another run or lies beyond the deck's steps), none, or a checkpoint path."),
      B("checkpoint.override_lr_schedule", "false", "On resume inside a stage, use the deck's LR schedule (train.lr, min_lr, warmup_steps, lr_schedule, steps) even where it differs from the checkpoint's (Megatron's --override-opt_param-scheduler)."),
      B("checkpoint.use_checkpoint_lr_schedule", "false", "On resume inside a stage, keep the checkpoint's LR schedule and ignore the deck's schedule keys (Megatron's --use-checkpoint-opt_param-scheduler); steps past its decay run at its min_lr."),
      I("checkpoint.alignment", "1048576", 1, 1e12, "HDF5 alignment of datasets in bytes (match the file system stripe size)."),
      C("checkpoint.io_mode", "independent", {"independent", "collective"}, "MPI-IO data transfers: independent (each rank writes its large contiguous shard) or collective (two-phase buffering, for many small pieces)."),
      S("checkpoint.mpiio_hints", "", "MPI-IO hints as key=value pairs separated by commas (e.g. striping_factor=8,striping_unit=4194304)."),

      // [eval]
      L("eval.tasks", "niah", "Evaluation tasks (comma-separated): niah, passkey, kv (synthetic vocabulary, teacher-forced), and RULER's niah_single_1..3, niah_multikey_1..3, niah_multivalue, niah_multiquery, vt, cwe, fwe (text through data.tokenizer, scored by generation; docs/longctx.md)."),
      T(KeyType::IntList, "eval.lengths", "256,512,1024", 2, 1e12, "Context lengths of the grid."),
      T(KeyType::IntList, "eval.depths", "0,25,50,75,100", 0, 100, "Needle depths in percent."),
      I("eval.samples", "4", 1, 1e6, "Prompts per (length, depth) cell."),
      I("eval.seed", "777", 0, 9.2e18, "Seed for evaluation prompts (kept apart from training data)."),
      B("eval.no_needle", "false", "Control: prompts without a needle (scores should be at chance)."),
      B("eval.by_generation", "false", "Also score niah, passkey and kv by greedy generation (prefill over the cp ring, KV-cache decode): <task>_generated[_no_needle][_stageN].csv beside the teacher-forced CSV."),
      P("eval.haystack", "", "A text file whose words (through data.tokenizer) form the haystack, with the gkamradt needle and question sentences; empty = the synthetic vocabulary of the training data."),
      I("eval.cwe_freq_cw", "0", 0, 1e6, "RULER cwe: how often each of the 10 common words occurs, at every length (0 = RULER's: 30, or 6 below 4096 tokens); with eval.cwe_freq_ucw, a scaled-down configuration (docs/longctx.md)."),
      I("eval.cwe_freq_ucw", "0", 0, 1e6, "RULER cwe: how often each other word occurs, at every length (0 = RULER's: 3, or 1 below 4096 tokens)."),

      // [generate] (lctrain --generate, and the RULER tasks of --eval)
      I("generate.max_new", "64", 1, 1e9, "Tokens to generate (--max-new overrides; RULER tasks use their own generation lengths)."),
      F("generate.temperature", "0", 0, 1e6, "Sampling temperature; 0 = greedy (the largest logit)."),
      F("generate.top_p", "1", 1e-9, 1, "Nucleus sampling: sample among the most likely tokens whose probability reaches top_p (1 = all)."),
      I("generate.seed", "0", 0, 9.2e18, "Seed of the sampler (temperature > 0)."),
      B("generate.chat", "false", "Wrap --prompt / --prompt-file as one user message in the Llama-3 chat template (needs a tokenizer with its special tokens) and stop at <|eot_id|>."),
      B("generate.stop_at_eos", "true", "Stop when the tokenizer's end-of-text token is generated."),
      I("generate.max_context", "0", 0, 1e12, "Longest prompt + generation allowed (0 = the model's context: the checkpoint's train.seq_len, or max_position_embeddings of an HF directory; no limit for rope.scaling = dynamic, which runs past its original length); longer is an input error."),

      // [cluster] (the --plan machine model)
      C("cluster.preset", "h100", {"h100", "l40s"}, "Machine model for --plan: H100 nodes (NVLink, 8x400 Gb/s rails) or L40S nodes (PCIe inside a node)."),
      F("cluster.intra_node_gbps", "0", 0, kInf, "Per-GPU bandwidth inside a node in GB/s (0 = preset)."),
      F("cluster.inter_node_gbps", "0", 0, kInf, "Per-NIC (rail) bandwidth between nodes in GB/s (0 = preset)."),
      F("cluster.cross_rail_penalty", "0", 0, kInf, "Cross-rail hops run at inter_node_gbps / this (>= 1; 0 = preset)."),
      F("cluster.latency_us", "0", 0, kInf, "Per-message latency in microseconds (0 = preset)."),
      F("cluster.device_tflops", "0", 0, kInf, "Sustained dense bf16 TFLOP/s per device (0 = preset)."),
      F("cluster.device_memory_gib", "0", 0, kInf, "Device memory per GPU in GiB (0 = preset)."),
  };
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

const std::vector<KeySpec>& deck_schema() {
  static const std::vector<KeySpec> table = build();  // immutable after first use
  return table;
}

const KeySpec* find_key(const std::string& key) {
  for (const auto& k : deck_schema())
    if (k.key == key) return &k;
  return nullptr;
}

std::string closest_key(const std::string& key) {
  std::string best;
  size_t best_d = std::string::npos;
  // Prefer keys in the same section; then anywhere.
  for (const auto& k : deck_schema()) {
    size_t d = edit_distance(key, k.key);
    const std::string name = k.key.substr(k.key.find('.') + 1);
    const std::string kname = key.substr(key.find('.') + 1);
    d = std::min(d, edit_distance(kname, name) + 1);  // right name, wrong section
    if (d < best_d) best_d = d, best = k.key;
  }
  const size_t limit = std::max<size_t>(2, key.size() / 3);
  return best_d <= limit ? best : "";
}

std::string describe_range(const KeySpec& s) {
  std::ostringstream os;
  auto num = [](double x) {
    std::ostringstream o;
    if (std::fabs(x) < 1e15 && x == std::floor(x))
      o << (long long)x;
    else
      o << x;
    return o.str();
  };
  auto bounds = [&](const char* what) {
    os << what;
    const bool lo = std::isfinite(s.min), hi = std::isfinite(s.max) && s.max < 1e9;
    if (lo && hi)
      os << " in [" << num(s.min) << ", " << num(s.max) << "]";
    else if (lo)
      os << " >= " << num(s.min);
  };
  switch (s.type) {
    case KeyType::Int: bounds("integer"); break;
    case KeyType::Float: bounds("number"); break;
    case KeyType::Number: bounds("number (64-bit; exact when integral)"); break;
    case KeyType::Bool: os << "true or false"; break;
    case KeyType::String: os << "text"; break;
    case KeyType::Path: os << "path"; break;
    case KeyType::List: os << "comma-separated list"; break;
    case KeyType::IntList: os << "comma-separated integers"; break;
    case KeyType::Auto: bounds("'auto' or integer"); break;
    case KeyType::NumberOrAuto: bounds("'auto' or number"); break;
    case KeyType::Choice: {
      os << "one of ";
      for (size_t i = 0; i < s.choices.size(); ++i) os << (i ? "|" : "") << s.choices[i];
      break;
    }
  }
  return os.str();
}

}  // namespace lct
