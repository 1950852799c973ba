#include "ckpt/checkpoint_header.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lct {

void write_checkpoint_header(H5File& f, const CheckpointHeader& h) {
  const ModelConfig& m = h.model;
  const RopeConfig& r = h.rope;
  const nlohmann::json model = {{"vocab_size", m.vocab_size}, {"dim", m.dim},
                                {"n_layers", m.n_layers},     {"n_heads", m.n_heads},
                                {"n_kv_heads", m.n_kv_heads}, {"head_dim", m.head_dim},
                                {"ffn_dim", m.ffn_dim},       {"norm_eps", m.norm_eps},
                                {"tie_embeddings", m.tie_embeddings}};
  const nlohmann::json rope = {{"theta", r.theta},
                               {"scaling", r.scaling},
                               {"factor", r.factor},
                               {"low_freq_factor", r.low_freq_factor},
                               {"high_freq_factor", r.high_freq_factor},
                               {"original_max_position_embeddings", r.original_max_position_embeddings},
                               {"beta_fast", r.beta_fast},
                               {"beta_slow", r.beta_slow},
                               {"attention_factor", r.attention_factor},
                               {"base_theta", r.base_theta},
                               {"base_context", r.base_context}};
  const nlohmann::json layout = {{"world_size", h.world_size}, {"tp", h.tp}, {"cp", h.cp},
                                 {"dp", h.dp},                 {"zero", h.zero}, {"nodes", h.nodes}};
  f.set_attr("/", "format", std::string(kCheckpointFormat));
  f.set_attr("/", "format_version", kCheckpointVersion);
  f.set_attr("/", "model_config", model.dump());
  f.set_attr("/", "rope", rope.dump());
  f.set_attr("/", "rope_theta", r.theta);
  f.set_attr("/", "seq_len", h.seq_len);
  f.set_attr("/", "effective_deck", h.deck_text);
  f.set_attr("/", "init_from", h.init_from);
  f.set_attr("/", "optimizer", h.optimizer);
  f.set_attr("/", "run_name", h.run_name);
  f.set_attr("/", "layout", layout.dump());
  f.make_groups("/train");
  const TrainState& s = h.state;
  f.set_attr("/train", "step", s.step);
  f.set_attr("/train", "stage", s.stage);
  f.set_attr("/train", "stage_step", s.stage_step);
  f.set_attr("/train", "stage_steps", s.stage_steps);
  f.set_attr("/train", "data_cursor", s.data_cursor);
  f.set_attr("/train", "optim_t", s.optim_t);
  f.set_attr("/train", "seed", s.seed);
  if (!h.run_identity.empty()) {
    f.set_attr("/", "run_identity", h.run_identity);
    f.set_attr("/", "run_identity_keys", h.run_identity_keys);
  }
  if (h.lr_schedule.known) {
    const LrScheduleRecord& l = h.lr_schedule;
    f.set_attr("/train", "lr", l.lr);
    f.set_attr("/train", "min_lr", l.min_lr);
    f.set_attr("/train", "lr_warmup_steps", l.warmup_steps);
    f.set_attr("/train", "lr_decay_steps", l.decay_steps);
    f.set_attr("/train", "lr_schedule", l.schedule);
  }
}

CheckpointHeader read_checkpoint_header(const H5File& f) {
  const std::string& path = f.path();
  if (!f.has_attr("/", "format") || f.attr_str("/", "format") != kCheckpointFormat)
    throw InputError(str(path, " is not an lctrain checkpoint (no 'format' attribute = ", kCheckpointFormat, ")"));
  const int64_t version = f.attr_i64("/", "format_version");
  if (version != kCheckpointVersion)
    throw InputError(str(path, ": checkpoint format version ", version, ", this lctrain reads version ",
                         kCheckpointVersion));
  CheckpointHeader h;
  try {
    const nlohmann::json mj = nlohmann::json::parse(f.attr_str("/", "model_config"));
    ModelConfig& m = h.model;
    m.vocab_size = mj.at("vocab_size");
    m.dim = mj.at("dim");
    m.n_layers = mj.at("n_layers");
    m.n_heads = mj.at("n_heads");
    m.n_kv_heads = mj.at("n_kv_heads");
    m.head_dim = mj.at("head_dim");
    m.ffn_dim = mj.at("ffn_dim");
    m.norm_eps = mj.at("norm_eps");
    m.tie_embeddings = mj.at("tie_embeddings");
    const nlohmann::json rj = nlohmann::json::parse(f.attr_str("/", "rope"));
    RopeConfig& r = h.rope;
    r.theta = rj.at("theta");
    r.scaling = rj.at("scaling");
    r.factor = rj.at("factor");
    r.low_freq_factor = rj.at("low_freq_factor");
    r.high_freq_factor = rj.at("high_freq_factor");
    r.original_max_position_embeddings = rj.at("original_max_position_embeddings");
    r.beta_fast = rj.at("beta_fast");
    r.beta_slow = rj.at("beta_slow");
    r.attention_factor = rj.at("attention_factor");
    r.base_theta = rj.at("base_theta");
    r.base_context = rj.at("base_context");
    const nlohmann::json lj = nlohmann::json::parse(f.attr_str("/", "layout"));
    h.world_size = lj.at("world_size");
    h.tp = lj.at("tp");
    h.cp = lj.at("cp");
    h.dp = lj.at("dp");
    h.zero = lj.at("zero");
    h.nodes = lj.at("nodes");
  } catch (const nlohmann::json::exception& e) {
    throw InputError(str(path, ": malformed checkpoint attributes: ", e.what()));
  }
  h.seq_len = f.attr_i64("/", "seq_len");
  h.deck_text = f.attr_str("/", "effective_deck");
  h.init_from = f.attr_str("/", "init_from");
  h.optimizer = f.attr_str("/", "optimizer");
  h.run_name = f.attr_str("/", "run_name");
  TrainState& s = h.state;
  s.step = f.attr_i64("/train", "step");
  s.stage = f.attr_i64("/train", "stage");
  s.stage_step = f.attr_i64("/train", "stage_step");
  s.stage_steps = f.attr_i64("/train", "stage_steps");
  s.data_cursor = f.attr_i64("/train", "data_cursor");
  s.optim_t = f.attr_i64("/train", "optim_t");
  s.seed = f.attr_i64("/train", "seed");
  // A state no run can reach (a flipped byte, a hand-edited file) must not resume: a negative data
  // cursor or optimizer step count trains on wrong data or divides by zero in Adam's correction.
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"step", s.step}, {"stage", s.stage},
                                {"stage_step", s.stage_step}, {"stage_steps", s.stage_steps},
                                {"data_cursor", s.data_cursor}, {"optim_t", s.optim_t}})
    if (v < 0)
      throw InputError(str(path, ": /train attribute ", name, " = ", v, " is negative: a corrupt checkpoint"));
  if (s.stage_step > s.step || h.seq_len < 1)
    throw InputError(str(path, ": /train stage_step = ", s.stage_step, " > step = ", s.step, " or seq_len = ", h.seq_len,
                         " < 1: a corrupt checkpoint"));
  // Added after format version 1 was fixed: optional, absent in older files.
  if (f.has_attr("/", "run_identity")) {
    h.run_identity = f.attr_str("/", "run_identity");
    h.run_identity_keys = f.has_attr("/", "run_identity_keys") ? f.attr_str("/", "run_identity_keys") : "";
  }
  if (f.has_attr("/train", "lr_schedule")) {
    LrScheduleRecord& l = h.lr_schedule;
    l.known = true;
    l.lr = f.attr_f64("/train", "lr");
    l.min_lr = f.attr_f64("/train", "min_lr");
    l.warmup_steps = f.attr_i64("/train", "lr_warmup_steps");
    l.decay_steps = f.attr_i64("/train", "lr_decay_steps");
    l.schedule = f.attr_str("/train", "lr_schedule");
  }
  return h;
}

}  // namespace lct
