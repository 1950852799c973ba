#include "deck/config.h"

#include <cmath>

#include "core/error.h"

namespace lct {

double scaling_law_theta(double base_theta, double base_context, double seq_len) {
  const double two_pi = 2.0 * M_PI;
  const double e = std::log(seq_len / two_pi) / std::log(base_context / two_pi);
  return std::round(std::pow(base_theta, e));
}

void resolve_deck(Deck& d) {
  const int64_t dim = d.get_int("model.dim"), nh = d.get_int("model.n_heads");
  if (d.get_int("model.n_kv_heads") == 0) d.set("model.n_kv_heads", std::to_string(nh), "resolved: = model.n_heads");
  const int64_t nkv = d.get_int("model.n_kv_heads");
  if (nh % nkv != 0)
    throw InputError(str("model.n_heads = ", nh, " is not a multiple of model.n_kv_heads = ", nkv, " (",
                         d.origin("model.n_kv_heads"), "): grouped-query attention needs n_heads = k * n_kv_heads"));
  if (d.get_int("model.head_dim") == 0) {
    if (dim % nh != 0)
      throw InputError(str("model.dim = ", dim, " is not divisible by model.n_heads = ", nh,
                           "; set model.head_dim explicitly or change the head count"));
    d.set("model.head_dim", std::to_string(dim / nh), "resolved: = model.dim / model.n_heads");
  }
  if (d.get_int("model.head_dim") % 2 != 0)
    throw InputError(str("model.head_dim = ", d.get("model.head_dim"), " (", d.origin("model.head_dim"),
                         ") must be even: RoPE rotates pairs of dimensions"));
  if (d.get_int("model.ffn_dim") == 0) {
    const int64_t f = ((8 * dim / 3) + 31) / 32 * 32;
    d.set("model.ffn_dim", std::to_string(f), "resolved: 8*dim/3 rounded up to a multiple of 32");
  }
  if (d.is_auto("rope.theta")) {
    const double th = scaling_law_theta(d.get_float("rope.base_theta"), double(d.get_int("rope.base_context")),
                                        double(d.get_int("train.seq_len")));
    d.set("rope.theta", format_number(th),
          str("resolved: auto = scaling law for seq_len ", d.get("train.seq_len"), " from base_theta ",
              d.get("rope.base_theta"), " at ", d.get("rope.base_context")));
  }
  if (d.get_int("rope.original_max_position_embeddings") == 0)
    d.set("rope.original_max_position_embeddings", d.get("rope.base_context"), "resolved: = rope.base_context");
  const bool reset_mask = d.get_bool("data.reset_attention_mask");
  if (d.get("parallel.cp_sharding") == "auto")
    d.set("parallel.cp_sharding", reset_mask ? "doc_zigzag" : "zigzag",
          reset_mask ? "resolved: auto = doc_zigzag with data.reset_attention_mask (docs/parallel.md)"
                     : "resolved: auto = zigzag");
  if (d.get("parallel.cp_sharding") == "doc_zigzag" && !reset_mask)
    throw InputError(str("parallel.cp_sharding = doc_zigzag (", d.origin("parallel.cp_sharding"),
                         ") needs data.reset_attention_mask = true: each document is sharded on its own and its "
                         "padding must stay invisible to the next one; set data.reset_attention_mask = true or "
                         "parallel.cp_sharding = zigzag"));
  if (reset_mask && d.get("model.attention_impl") == "cudnn")
    throw InputError(str("data.reset_attention_mask = true (", d.origin("data.reset_attention_mask"),
                         ") is not supported by model.attention_impl = cudnn (its masks are index ranges, one graph "
                         "per piece shape); use model.attention_impl = own"));
}

void resolve_cp_split(ParallelConfig& pc) {
  const std::vector<int64_t>& h = pc.hierarchical_cp_sizes;
  const int cp = pc.cp;
  std::string given;
  for (size_t i = 0; i < h.size(); ++i) given += (i ? "," : "") + std::to_string(h[i]);
  if (!h.empty() && (h.size() != 2 || h[0] < 1 || h[1] < 1))
    throw InputError(str("parallel.hierarchical_cp_sizes = ", given, " must be two sizes U,R >= 1 (all-to-all U x ring R, ",
                         "U x R = parallel.cp) for parallel.cp_comm_type = ", pc.cp_comm_type));
  int64_t U = 1, R = cp;
  if (pc.cp_comm_type == "p2p") {
    U = 1, R = cp;
  } else if (pc.cp_comm_type == "a2a") {
    U = cp, R = 1;
  } else if (pc.cp_comm_type == "a2a+p2p") {
    if (h.empty())
      throw InputError(str("parallel.cp_comm_type = a2a+p2p needs parallel.hierarchical_cp_sizes = U,R (all-to-all over U ",
                           "ranks inside a node x ring over R, U x R = parallel.cp = ", cp, ")"));
    U = h[0], R = h[1];
  } else {
    throw InputError(str("parallel.cp_comm_type = ", pc.cp_comm_type, ": use p2p, a2a or a2a+p2p"));
  }
  if (!h.empty() && (h[0] != U || h[1] != R || h[0] * h[1] != cp)) {
    if (pc.cp_comm_type == "a2a+p2p")
      throw InputError(str("parallel.hierarchical_cp_sizes = ", given, " gives U x R = ", h[0] * h[1],
                           " but parallel.cp = ", cp, " (parallel.cp_comm_type = a2a+p2p): U x R must equal cp"));
    throw InputError(str("parallel.hierarchical_cp_sizes = ", given, " does not match parallel.cp_comm_type = ",
                         pc.cp_comm_type, " with parallel.cp = ", cp, ": ", pc.cp_comm_type, " means U,R = ", U, ",", R,
                         "; give that, leave parallel.hierarchical_cp_sizes empty, or set parallel.cp_comm_type = a2a+p2p"));
  }
  pc.cp_a2a = int(U);
  pc.cp_ring = int(R);
}

Deck resolved_stage(const Deck& base, int n) {
  Deck d = base.stage(n);
  resolve_deck(d);
  return d;
}

Config config_from_deck(const Deck& d) {
  Config c;
  c.run.name = d.get("run.name");
  c.run.out_dir = d.get("run.out_dir");
  c.run.device = d.get("run.device");
  c.run.seed = uint64_t(d.get_int("run.seed"));
  c.run.hang_timeout = d.get_float("run.hang_timeout");
  c.run.attention_tile = int(d.get_int("run.attention_tile"));

  c.model.vocab_size = d.get_int("model.vocab_size");
  c.model.make_vocab_size_divisible_by = d.get_int("model.make_vocab_size_divisible_by");
  c.model.dim = d.get_int("model.dim");
  c.model.n_layers = d.get_int("model.n_layers");
  c.model.n_heads = d.get_int("model.n_heads");
  c.model.n_kv_heads = d.get_int("model.n_kv_heads");
  c.model.head_dim = d.get_int("model.head_dim");
  c.model.ffn_dim = d.get_int("model.ffn_dim");
  c.model.norm_eps = d.get_float("model.norm_eps");
  c.model.tie_embeddings = d.get_bool("model.tie_embeddings");
  c.model.init_from = d.get("model.init_from");
  c.model.init_std = d.get_float("model.init_std");
  c.model.attention_impl = d.get("model.attention_impl");
  LCT_CHECK(c.model.n_kv_heads > 0 && c.model.head_dim > 0 && c.model.ffn_dim > 0, "deck not resolved");

  LCT_CHECK(!d.is_auto("rope.theta"), "rope.theta not resolved");
  c.rope.theta = d.get_float("rope.theta");
  c.rope.base_theta = d.get_float("rope.base_theta");
  c.rope.base_context = d.get_int("rope.base_context");
  c.rope.scaling = d.get("rope.scaling");
  c.rope.factor = d.get_float("rope.factor");
  c.rope.low_freq_factor = d.get_float("rope.low_freq_factor");
  c.rope.high_freq_factor = d.get_float("rope.high_freq_factor");
  c.rope.original_max_position_embeddings = d.get_int("rope.original_max_position_embeddings");
  c.rope.beta_fast = d.get_float("rope.beta_fast");
  c.rope.beta_slow = d.get_float("rope.beta_slow");
  c.rope.attention_factor = d.get_float("rope.attention_factor");

  c.train.seq_len = d.get_int("train.seq_len");
  c.train.micro_batch = d.get_int("train.micro_batch");
  c.train.grad_accum = d.get_int("train.grad_accum");
  c.train.steps = d.get_int("train.steps");
  c.train.lr = d.get_float("train.lr");
  c.train.lr_schedule = d.get("train.lr_schedule");
  c.train.warmup_steps = d.get_int("train.warmup_steps");
  c.train.min_lr = d.get_float("train.min_lr");
  c.train.grad_clip = d.get_float("train.grad_clip");
  c.train.recompute = d.get("train.recompute");
  c.train.offload = d.get("train.offload");
  c.train.log_every = d.get_int("train.log_every");
  c.train.carry_optimizer = d.get_bool("train.carry_optimizer");

  c.optim.name = d.get("optim.name");
  c.optim.beta1 = d.get_float("optim.beta1");
  c.optim.beta2 = d.get_float("optim.beta2");
  c.optim.eps = d.get_float("optim.eps");
  c.optim.weight_decay = d.get_float("optim.weight_decay");

  c.data.train = d.get_list("data.train");
  c.data.valid = d.get_list("data.valid");
  c.data.format = d.get("data.format");
  c.data.eod_token = d.get_int("data.eod_token");
  c.data.bos_token = d.get_int("data.bos_token");
  c.data.reset_attention_mask = d.get_bool("data.reset_attention_mask");
  c.data.reset_position_ids = d.get_bool("data.reset_position_ids");
  c.data.eod_mask_loss = d.get_bool("data.eod_mask_loss");
  c.data.shuffle = d.get_bool("data.shuffle");
  c.data.prefetch = d.get_int("data.prefetch");
  c.data.valid_every = d.get_int("data.valid_every");
  c.data.valid_samples = d.get_int("data.valid_samples");
  c.data.tokenizer = d.get("data.tokenizer");

  c.parallel.tp = int(d.get_int("parallel.tp"));
  c.parallel.cp = int(d.get_int("parallel.cp"));
  c.parallel.dp = d.is_auto("parallel.dp") ? 0 : int(d.get_int("parallel.dp"));
  c.parallel.zero = int(d.get_int("parallel.zero"));
  c.parallel.ranks_per_node = int(d.get_int("parallel.ranks_per_node"));
  c.parallel.rail_map = d.get_int_list("parallel.rail_map");
  c.parallel.sequence_parallel = d.get_bool("parallel.sequence_parallel");
  c.parallel.ring_aware = d.get("parallel.ring_order") == "aware";
  c.parallel.cp_sharding = d.get("parallel.cp_sharding");
  LCT_CHECK(c.parallel.cp_sharding != "auto", "parallel.cp_sharding not resolved");
  c.parallel.zigzag = c.parallel.cp_sharding != "contiguous";
  c.parallel.device_comm = d.get("parallel.device_comm");
  c.parallel.cp_comm_type = d.get("parallel.cp_comm_type");
  c.parallel.hierarchical_cp_sizes = d.get_int_list("parallel.hierarchical_cp_sizes");
  resolve_cp_split(c.parallel);

  c.checkpoint.every = d.get_int("checkpoint.every");
  c.checkpoint.final = d.get_bool("checkpoint.final");
  c.checkpoint.keep_last = d.get_int("checkpoint.keep_last");
  c.checkpoint.resume = d.get("checkpoint.resume");
  c.checkpoint.alignment = d.get_int("checkpoint.alignment");
  c.checkpoint.mpiio_hints = d.get("checkpoint.mpiio_hints");
  c.checkpoint.collective_io = d.get("checkpoint.io_mode") == "collective";
  c.checkpoint.override_lr_schedule = d.get_bool("checkpoint.override_lr_schedule");
  c.checkpoint.use_checkpoint_lr_schedule = d.get_bool("checkpoint.use_checkpoint_lr_schedule");

  c.eval.tasks = d.get_list("eval.tasks");
  c.eval.lengths = d.get_int_list("eval.lengths");
  c.eval.depths = d.get_int_list("eval.depths");
  c.eval.samples = d.get_int("eval.samples");
  c.eval.seed = uint64_t(d.get_int("eval.seed"));
  c.eval.no_needle = d.get_bool("eval.no_needle");
  c.eval.haystack = d.get("eval.haystack");
  c.eval.cwe_freq_cw = int(d.get_int("eval.cwe_freq_cw"));
  c.eval.cwe_freq_ucw = int(d.get_int("eval.cwe_freq_ucw"));
  c.eval.by_generation = d.get_bool("eval.by_generation");

  c.cluster.preset = d.get("cluster.preset");
  c.cluster.intra_node_gbps = d.get_float("cluster.intra_node_gbps");
  c.cluster.inter_node_gbps = d.get_float("cluster.inter_node_gbps");
  c.cluster.cross_rail_penalty = d.get_float("cluster.cross_rail_penalty");
  c.cluster.latency_us = d.get_float("cluster.latency_us");
  c.cluster.device_tflops = d.get_float("cluster.device_tflops");
  c.cluster.device_memory_gib = d.get_float("cluster.device_memory_gib");
  return c;
}

}  // namespace lct
