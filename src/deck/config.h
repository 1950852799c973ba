// Typed run settings, built from a validated (and resolved) Deck. One struct per deck section.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deck/deck.h"

namespace lct {

struct RunConfig {
  std::string name, out_dir, device;
  uint64_t seed = 0;
  double hang_timeout = 0;
  int attention_tile = 64;
};

struct ModelConfig {
  int64_t make_vocab_size_divisible_by = 128;  // per tp rank: GEMM-friendly LM-head rows
  int64_t vocab_size = 0, dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ffn_dim = 0;
  double norm_eps = 1e-5;
  bool tie_embeddings = false;
  std::string init_from;
  double init_std = 0.02;
  std::string attention_impl = "own";
};

// Vocabulary rows each tp rank owns (ceil(V / tp), balanced) and holds, padded to a multiple of
// make_vocab_size_divisible_by (aligned LM-head GEMMs; padded rows are zero and masked).
inline int64_t vocab_rows_per_rank(const ModelConfig& m, int tp) { return (m.vocab_size + tp - 1) / tp; }
inline int64_t vocab_padded_rows_per_rank(const ModelConfig& m, int tp) {
  const int64_t d = m.make_vocab_size_divisible_by > 0 ? m.make_vocab_size_divisible_by : 1;
  return (vocab_rows_per_rank(m, tp) + d - 1) / d * d;
}

struct RopeConfig {
  double theta = 10000;       // resolved (never "auto" here)
  double base_theta = 500000;
  int64_t base_context = 8192;
  std::string scaling = "none";
  double factor = 1, low_freq_factor = 1, high_freq_factor = 4;
  int64_t original_max_position_embeddings = 0;  // resolved: base_context when 0 in the deck
  double beta_fast = 32, beta_slow = 1, attention_factor = 0;
};

struct TrainConfig {
  int64_t seq_len = 0, micro_batch = 1, grad_accum = 1, steps = 0, warmup_steps = 0, log_every = 1;
  double lr = 0, min_lr = 0, grad_clip = 0;
  std::string lr_schedule = "cosine", recompute = "none";
  std::string offload = "none";  // none | optimizer | activations | both
  bool carry_optimizer = false;
};

struct OptimConfig {
  std::string name = "adamw";
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0;
};

struct DataConfig {
  std::vector<std::string> train, valid;
  std::string format = "auto", tokenizer = "bytes";
  int64_t eod_token = -1, bos_token = -1, prefetch = 2, valid_every = 0, valid_samples = 8;
  bool shuffle = true;
  bool reset_attention_mask = false, reset_position_ids = false, eod_mask_loss = false;
};

struct ParallelConfig {
  int tp = 1, cp = 1, dp = 0;  // dp 0 = auto
  int zero = 0;  // 0-3: ZeRO stage (1: optimizer state, 2: + gradients, 3: + parameters sharded over dp x cp)
  int ranks_per_node = 0;
  std::vector<int64_t> rail_map;
  bool sequence_parallel = true;
  bool ring_aware = true;
  bool zigzag = true;                     // cp_sharding is not contiguous (T splits into 2cp chunks)
  std::string cp_sharding = "zigzag";     // resolved: zigzag | doc_zigzag | contiguous
  std::string device_comm = "nccl";  // nccl | mpi (staged through host memory)
  // Context parallelism: p2p (ring over cp), a2a (all-to-all over cp), a2a+p2p (all-to-all over U
  // inside a node x ring over R); resolved: cp = cp_a2a (U) x cp_ring (R).
  std::string cp_comm_type = "p2p";
  std::vector<int64_t> hierarchical_cp_sizes;  // as given (empty = derived from the type)
  int cp_a2a = 1, cp_ring = 1;
};

// U and R of parallel.cp_comm_type / parallel.hierarchical_cp_sizes for parallel.cp = cp: p2p 1 x cp,
// a2a cp x 1, a2a+p2p the sizes given (U x R must equal cp). InputError naming the keys when the
// sizes are missing, malformed or inconsistent with the type or with cp. Sets pc.cp_a2a / cp_ring.
void resolve_cp_split(ParallelConfig& pc);

struct CheckpointConfig {
  int64_t every = 0, keep_last = 2, alignment = 1 << 20;
  std::string resume = "auto", mpiio_hints;
  bool collective_io = false;
  bool final = true;  // checkpoint at the end of the last stage
  bool override_lr_schedule = false, use_checkpoint_lr_schedule = false;
};

struct EvalConfig {
  std::vector<std::string> tasks;
  std::vector<int64_t> lengths, depths;
  int64_t samples = 4;
  uint64_t seed = 0;
  bool no_needle = false;
  std::string haystack;
  int cwe_freq_cw = 0, cwe_freq_ucw = 0;
  bool by_generation = false;  // niah/passkey/kv also scored by greedy generation  // 0: RULER's (30 / 3, and 6 / 1 below 4096 tokens)
};

struct ClusterConfig {
  std::string preset = "h100";
  double intra_node_gbps = 0, inter_node_gbps = 0, cross_rail_penalty = 0, latency_us = 0, device_tflops = 0,
         device_memory_gib = 0;
};

struct Config {
  RunConfig run;
  ModelConfig model;
  RopeConfig rope;
  TrainConfig train;
  OptimConfig optim;
  DataConfig data;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  EvalConfig eval;
  ClusterConfig cluster;
};

// theta(T) = base^(ln(T / 2pi) / ln(T_base / 2pi)), rounded to the nearest integer: the critical
// RoPE base of Liu et al. 2023 ("Scaling laws of RoPE-based extrapolation") for context T.
double scaling_law_theta(double base_theta, double base_context, double seq_len);

// Fills derived values in place so the effective deck shows what runs: n_kv_heads / head_dim /
// ffn_dim = 0 become their defaults, rope.theta = auto becomes the scaling-law value for this
// deck's seq_len, rope.original_max_position_embeddings = 0 becomes base_context. Checks the model
// shape (heads divide dim, even head_dim, ...) with InputErrors naming the keys.
void resolve_deck(Deck& d);

// The resolved deck of stage n (1-based): stage overrides applied, then resolve_deck.
Deck resolved_stage(const Deck& base, int n);

Config config_from_deck(const Deck& d);  // d must be resolved

}  // namespace lct
