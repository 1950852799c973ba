#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "core/text_file.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/loader.h"
#include "deck/config.h"
#include "model/llama.h"
#include "ops/rank_backend.h"
#include "optim/lr_schedule.h"
#include "optim/optimizer.h"
#include "parallel/agree.h"
#include "parallel/context.h"
#include "parallel/mpi_comm.h"
#include "parallel/watchdog.h"
#include "train/batch.h"
#include "train/metrics.h"
#include "train/resolve.h"
#include "train/run_identity.h"
#include "train/signals.h"
#include "train/step_report.h"
#include "train/validate.h"
#include "train/validation.h"
#include "train/weights.h"

namespace lct {

int64_t steps_before_stage(const Deck& deck, int stage) {
  int64_t n = 0;
  for (int s = 1; s < stage; ++s) n += deck.stage(s).get_int("train.steps");
  return n;
}

namespace {

std::string effective_deck_text(const Deck& deck) {
  Deck base = resolve_run_stage(deck, 1);
  std::string text = "# effective deck written by lctrain: every key, resolved; a valid deck that reproduces the run\n";
  text += base.effective_text();
  if (deck.num_stages() > 1 || !deck.stage_overrides(1).empty())
    for (int s = 1; s <= deck.num_stages(); ++s) text += resolve_run_stage(deck, s).effective_text(str("stage", s, "."));
  return text;
}

// A test hook for the failure path: LCT_DEBUG_FAIL_RANK=r LCT_DEBUG_FAIL_STEP=s makes rank r fail
// alone at step s while the others go on into a collective (docs/exit-codes.md).
void debug_fail_hook(int world_rank, int64_t step) {
  const char* r = std::getenv("LCT_DEBUG_FAIL_RANK");
  const char* s = std::getenv("LCT_DEBUG_FAIL_STEP");
  if (r && s && std::atoi(r) == world_rank && std::atoll(s) == step)
    throw Error(kExitFailure, str("debug failure injected on rank ", world_rank, " at step ", step,
                                  " (LCT_DEBUG_FAIL_RANK / LCT_DEBUG_FAIL_STEP)"));
}

// Test hook: LCT_DEBUG_STOP_AFTER_STEP=s behaves as if a stop signal arrived during step s.
bool debug_stop_hook(int64_t step) {
  const char* s = std::getenv("LCT_DEBUG_STOP_AFTER_STEP");
  return s && std::atoll(s) == step;
}

// Test hook: LCT_DEBUG_HOLD_AFTER_STEP=s makes a run that started at step 1 (not a resumed one)
// hold after step s (its metrics row written) until a stop signal arrives, as if that step never
// ended: a SLURM test can then preempt or signal it at a known step on a machine of any speed.
bool debug_hold_hook(int64_t step, bool resumed) {
  const char* s = std::getenv("LCT_DEBUG_HOLD_AFTER_STEP");
  return s && !resumed && std::atoll(s) == step;
}

std::string stop_label() {
  return stop_signal() ? std::string(signal_label(stop_signal())) : std::string("a stop request (a signal to another rank, or LCT_DEBUG_STOP_AFTER_STEP)");
}

struct StageResult {
  int64_t last_step = 0;
  bool interrupted = false;       // stopped by a signal before the stage's end (checkpoint saved)
  bool stop_requested = false;    // a stop signal arrived (the stage may still have completed)
  std::string final_checkpoint;   // the stage-end checkpoint
};

// Where a stage's weights come from.
struct StageStart {
  std::string checkpoint;  // "" = model.init_from or random
  bool continue_stage = false;  // resume inside the stage: optimizer state, data cursor, step
};

std::string mb_text(double bytes) { return format_number(std::round(bytes / 1e5) / 10); }

std::string lr_text(double lr) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", lr);
  return b;
}

double lr_of(const LrScheduleRecord& r, int64_t stage_step) {
  return lr_at(stage_step, r.decay_steps, r.lr, r.min_lr, r.warmup_steps, r.schedule);
}

std::string schedule_text(const LrScheduleRecord& r) {
  return str(r.schedule, " from lr ", lr_text(r.lr), " (", r.warmup_steps, " warmup steps) to min_lr ",
             lr_text(r.min_lr), " at stage step ", r.decay_steps);
}

// The LR schedule a stage continues with when it resumes inside the stage at stage step `next`
// (Megatron's rule: a changed schedule key is an error unless the deck says which to use).
// Raising train.steps alone continues the stage with the decay recomputed to the new end, and the
// log says so.
LrScheduleRecord resume_lr_schedule(const LrScheduleRecord& ck, const LrScheduleRecord& mine, const Config& c,
                                    const Deck& d, int64_t next, int64_t step_base, const std::string& path) {
  if (!ck.known) {
    info("LR schedule: ", path, " does not record its schedule (an older lctrain); the deck's continues: ",
         schedule_text(mine));
    return mine;
  }
  std::vector<std::string> diffs;
  auto differ = [&](const char* key, const std::string& theirs, const std::string& ours) {
    if (theirs != ours)
      diffs.push_back(str(key, " = ", ours, " in the deck (", d.origin(key), "), ", theirs, " in the checkpoint"));
  };
  differ("train.lr", format_number(ck.lr), format_number(mine.lr));
  differ("train.min_lr", format_number(ck.min_lr), format_number(mine.min_lr));
  differ("train.warmup_steps", std::to_string(ck.warmup_steps), std::to_string(mine.warmup_steps));
  differ("train.lr_schedule", ck.schedule, mine.schedule);
  const bool steps_changed = ck.decay_steps != mine.decay_steps;
  if (diffs.empty() && !steps_changed) return mine;
  const int64_t g = step_base + next;  // the global number of the next step
  const std::string at = str("lr at step ", g, ": ", lr_text(lr_of(mine, next)), " with the deck's schedule, ",
                             lr_text(lr_of(ck, next)), " with the checkpoint's");
  if (c.checkpoint.use_checkpoint_lr_schedule) {
    info("LR schedule: checkpoint.use_checkpoint_lr_schedule = true: the checkpoint's schedule continues (",
         schedule_text(ck), (mine.decay_steps > ck.decay_steps ? str("; steps after ", step_base + ck.decay_steps,
                                                                    " run at its min_lr")
                                                               : std::string()),
         "); ", at);
    return ck;
  }
  if (steps_changed)
    diffs.push_back(str("train.steps = ", mine.decay_steps, " in the deck (", d.origin("train.steps"), "), ",
                        ck.decay_steps, " in the checkpoint"));
  if (c.checkpoint.override_lr_schedule) {
    info("LR schedule: checkpoint.override_lr_schedule = true: the deck's schedule replaces the checkpoint's (",
         diffs.size() == 1 ? diffs[0] : str(diffs.size(), " keys differ"), "): ", schedule_text(mine), "; ", at);
    return mine;
  }
  if (diffs.size() == 1 && steps_changed && mine.decay_steps > ck.decay_steps) {
    info("LR schedule: train.steps raised from ", ck.decay_steps, " to ", mine.decay_steps,
         " since the checkpoint: the stage continues and its ", mine.schedule, " decay is recomputed to reach min_lr ",
         lr_text(mine.min_lr), " at step ", step_base + mine.decay_steps, " instead of ", step_base + ck.decay_steps,
         "; ", at, ". checkpoint.use_checkpoint_lr_schedule = true keeps the checkpoint's schedule instead");
    return mine;
  }
  std::string list;
  for (const std::string& x : diffs) list += (list.empty() ? "" : "; ") + x;
  throw InputError(str("the LR schedule changed since ", path, " (stage step ", next - 1, "): ", list,
                       ". A resumed stage continues its schedule unless the deck says which one to use: "
                       "checkpoint.override_lr_schedule = true (the deck's from here on) or "
                       "checkpoint.use_checkpoint_lr_schedule = true (the checkpoint's); ",
                       at),
                   true);
}

class StageRunner {
 public:
  StageRunner(const Deck& base, int stage, MPI_Comm world, int64_t step_base, const StageStart& start,
              const std::string& deck_text)
      : stage_(stage), last_stage_(stage == base.num_stages()), step_base_(step_base) {
    deck_ = collectively([&] { return resolve_run_stage(base, stage); });
    cfg_ = collectively([&] { return config_from_deck(deck_); });
    save_.deck_text = deck_text;
    const RunIdentity id = collectively([&] { return run_identity(base, stage); });
    save_.run_identity = id.id();
    save_.run_identity_keys = id.keys;
    for (int s = 1; s <= base.num_stages(); ++s)
      save_.own_identities.push_back(s == stage ? id.id() : collectively([&] { return run_identity(base, s).id(); }));
    LrScheduleRecord& lr = save_.lr;
    lr.known = true;
    lr.lr = cfg_.train.lr;
    lr.min_lr = cfg_.train.min_lr;
    lr.warmup_steps = cfg_.train.warmup_steps;
    lr.decay_steps = cfg_.train.steps;
    lr.schedule = cfg_.train.lr_schedule;
    int world_size = 1;
    MPI_Comm_size(world, &world_size);
    ctx_ = collectively([&] { return make_parallel_context(world, cfg_.parallel); });
    is_root_ = ctx_->world_rank == 0;
    const Layout& L = ctx_->layout;
    const Config& c = cfg_;
    info("stage ", stage, ": seq_len ", c.train.seq_len, ", rope theta ", format_number(c.rope.theta),
         (c.rope.scaling != "none" ? " (" + c.rope.scaling + " scaling)" : std::string()), ", ", c.train.steps,
         " steps, global batch ", c.train.micro_batch * c.train.grad_accum * L.dp, " sequences");
    info(layout_table(L));
    if (is_root_) write_text_file_atomically(c.run.out_dir + "/layout.json", layout_json(L));

    ops_ = make_rank_backend(c, *ctx_);
    const ModelShape shape = training_shape(c, *ctx_);
    // The parameters live in the ZeRO store (optim/zero_params.h); the model binds them from it.
    params_ = collectively([&] {
      return std::make_unique<ZeroParams>(c.parallel.zero, *ops_,
                                          ParamTable::build(c.model, L.tp, shape.tp_rank, shape.unit_padding),
                                          ctx_->dpcp.get(), ctx_->tp.get(), c.parallel.sequence_parallel);
    });
    model_ = collectively([&] {
      return std::make_unique<Llama>(c.model, c.rope, shape, *ops_, L.tp > 1 ? ctx_->tp.get() : nullptr,
                                     L.cp_ring > 1 ? ctx_->ring_comm() : nullptr, params_.get(), ctx_->a2a_comm());
    });
    const bool offload_optimizer = c.train.offload == "optimizer" || c.train.offload == "both";
    optim_ = collectively([&] { return std::make_unique<Optimizer>(c.optim, *ops_, *params_, offload_optimizer); });
    int64_t cursor = 0;
    if (!start.checkpoint.empty()) {
      const CheckpointMeta meta = read_checkpoint_meta(start.checkpoint, ctx_->world_mpi);
      collectively([&] { check_model_matches(meta, c.model); return 0; });
      const bool moments = start.continue_stage || c.train.carry_optimizer;
      Timer load_timer;
      agree(ctx_->world_mpi, [&] { load_checkpoint(start.checkpoint, *model_, *ops_, optim_.get(), moments); });
      MPI_Barrier(ctx_->world_mpi);
      const double load_s = load_timer.seconds();
      std::error_code ec;
      const double file_mb = double(std::filesystem::file_size(start.checkpoint, ec)) / 1e6;
      const double data_mb = double(model_->table().total) * 4 * (meta.has_moments ? 3 : 1) / 1e6;
      info("loaded ", start.checkpoint, " (", mb_text(data_mb * 1e6), " MB of data, file ", mb_text(file_mb * 1e6),
           " MB) in ", format_number(std::round(load_s * 1000) / 1000), " s on ", ctx_->layout.topo.world_size,
           " ranks");
      if (start.continue_stage) {
        first_step_ = meta.state.stage_step + 1;
        cursor = meta.state.data_cursor;
        info("resuming stage ", stage, " at step ", step_base_ + first_step_, " from ", start.checkpoint);
        save_.lr = collectively([&] {
          return resume_lr_schedule(meta.lr_schedule, save_.lr, c, deck_, first_step_, step_base_, start.checkpoint);
        });
      } else {
        info("stage ", stage, " starts from ", start.checkpoint, moments ? " (optimizer moments carried over)" : "");
      }
    } else {
      agree(ctx_->world_mpi, [&] {
        const std::string& src = c.model.init_from;
        if (src.empty())
          init_random_weights(*model_, *ops_, c);
        else if (src.size() > 3 && src.rfind(".h5") == src.size() - 3)
          load_model_weights(*model_, *ops_, src);
        else
          load_hf_weights(*model_, *ops_, src);
      });
      // Say where the weights came from: a log read months later must tell a fine-tune from a fresh run.
      if (c.model.init_from.empty())
        info("stage ", stage, " starts from random weights (run.seed ", c.run.seed, ", model.init_std ", c.model.init_std, ")");
      else
        info("stage ", stage, " starts from model.init_from = ", c.model.init_from);
      optim_->sync_master_from_params();
    }

    agree(ctx_->world_mpi, [&] { check_stage_data(deck_); });  // file checks: a verdict per rank
    DataOptions dopt;
    dopt.train = c.data.train;
    dopt.format = c.data.format;
    dopt.vocab_size = c.model.vocab_size;
    dopt.eod_token = int32_t(c.data.eod_token);
    dopt.shuffle = c.data.shuffle;
    dopt.seed = c.run.seed;
    dopt.prefetch = int(c.data.prefetch);
    samples_per_step_ = c.train.micro_batch * c.train.grad_accum * L.dp;
    agree(ctx_->world_mpi, [&] {
      loader_ = std::make_unique<DataLoader>(dopt, c.train.seq_len, samples_per_step_, ctx_->me().dp_rank, L.dp);
      if (cursor > 0) loader_->seek(cursor);
    });
    if (!c.data.valid.empty()) {
      DataOptions vopt = dopt;
      vopt.train = c.data.valid;
      vopt.key = "[data] valid";
      vopt.shuffle = false;
      vopt.prefetch = 0;
      // One "step" of the validation loader = this evaluation's samples, split over dp.
      const int64_t per = (c.data.valid_samples + L.dp * c.train.micro_batch - 1) / (L.dp * c.train.micro_batch);
      valid_per_step_ = per * L.dp * c.train.micro_batch;
      agree(ctx_->world_mpi, [&] {
        valid_ = std::make_unique<DataLoader>(vopt, c.train.seq_len, valid_per_step_, ctx_->me().dp_rank, L.dp);
      });
      // What one evaluation really reads: rounded up to whole micro-batches on every replica, and
      // repeating samples when the files hold fewer.
      const int64_t avail = valid_->samples_per_epoch();
      std::string how = str("validation: ", valid_per_step_, " samples of ", c.train.seq_len, " tokens per evaluation");
      if (valid_per_step_ != c.data.valid_samples)
        how += str(" (data.valid_samples = ", c.data.valid_samples, " rounded up to a multiple of micro_batch x dp = ",
                   c.train.micro_batch * L.dp, ")");
      if (valid_per_step_ > avail)
        how += str("; data.valid holds only ", avail, " such samples, so ", valid_per_step_ - avail,
                   " of them are repeats (lower data.valid_samples or add validation data)");
      info(how);
    }
    batch_ = collectively([&] { return batch_layout(c, *ctx_, loader_->eod_token()); });
    metrics_ = std::make_unique<MetricsLog>(c.run.out_dir, is_root_);
  }

  // Runs the validation pass and reports it (stdout and a metrics event).
  void report_validation(int64_t step) {
    const Config& c = cfg_;
    const ValidationResult v = validate(*model_, *valid_, *ctx_, c.train.micro_batch, batch_);
    std::string buckets, text;
    for (int b = 0; b < kValidBuckets; ++b) {
      buckets += str(b ? ", " : "", format_number(std::round(v.by_bucket[b] * 1e6) / 1e6));
      text += str(b ? " " : "", format_number(std::round(v.by_bucket[b] * 1e3) / 1e3));
    }
    info("validation at step ", step, ": loss ", format_number(std::round(v.loss * 1e4) / 1e4), " over ", v.tokens,
         " tokens; by position (", kValidBuckets, " buckets of ", c.train.seq_len / kValidBuckets, "): ", text);
    metrics_->write_event(str("{\"event\": \"validation\", \"step\": ", step, ", \"valid_loss\": ", v.loss,
                              ", \"valid_tokens\": ", v.tokens, ", \"valid_loss_by_position\": [", buckets,
                              "], \"position_bucket\": ", c.train.seq_len / kValidBuckets, "}"));
  }

  // Test hook LCT_DEBUG_STAGE_START_DIR=DIR: before the stage's first step, save the state the stage
  // starts from (weights, AdamW moments, optimizer step, data cursor) as a checkpoint under
  // DIR/stage<k>/checkpoints, so a test sees what a stage really began with (tests/train/test_stages.cpp).
  void debug_dump_stage_start() {
    const char* dir = std::getenv("LCT_DEBUG_STAGE_START_DIR");
    if (!dir || !*dir) return;
    Config c = cfg_;
    c.run.out_dir = str(dir, "/stage", stage_);
    c.checkpoint.keep_last = 1;
    TrainState st;
    st.step = step_base_ + first_step_ - 1;
    st.stage = stage_;
    st.stage_step = first_step_ - 1;
    st.stage_steps = c.train.steps;
    st.data_cursor = loader_->cursor();
    st.optim_t = optim_->t();
    st.seed = int64_t(c.run.seed);
    save_checkpoint(c, save_, *ctx_, *model_, *optim_, *ops_, st);
  }

  StageResult run(Watchdog& dog) {
    const Config& c = cfg_;
    StageResult res;
    debug_dump_stage_start();
    Timer stage_timer;
    double step_time_sum = 0;
    for (int64_t s = first_step_; s <= c.train.steps; ++s) {
      const int64_t step = step_base_ + s;
      dog.beat("reading data", step);
      Timer t;
      // A bad token id surfaces where a sample is read, on some ranks only: agree on it.
      std::vector<Sample> samples;
      agree(ctx_->world_mpi, [&] { samples = loader_->next_step(); });
      std::vector<MicroBatch> micro;
      int64_t local_targets = 0;
      for (int64_t a = 0; a < c.train.grad_accum; ++a) {
        micro.push_back(make_micro_batch(samples, size_t(a * c.train.micro_batch), c.train.micro_batch, batch_));
        local_targets += count_targets(micro.back());
      }
      // Every target of the global batch is counted once: sum over dp x cp (tp ranks hold copies).
      const double total = ctx_->dpcp->all_reduce_scalar(double(local_targets));
      const double scale = total > 0 ? 1.0 / total : 0.0;
      params_->zero_grads();
      model_->ring_stats().reset();
      ctx_->traffic->reset();
      double loss_sum = 0;
      for (const MicroBatch& mb : micro) {
        dog.beat("forward/backward", step);
        loss_sum += model_->forward_backward(mb, scale);
      }
      debug_fail_hook(ctx_->world_rank, step);
      dog.beat("loss all-reduce", step);
      const double loss = ctx_->dpcp->all_reduce_scalar(loss_sum) * scale;
      if (!std::isfinite(loss))
        throw NumericalError(str("the loss is not finite at step ", step, " (stage ", stage_,
                                 "); lower train.lr or check the data"),
                             true);
      const double lr = lr_of(save_.lr, s);
      dog.beat("optimizer step", step);
      double gnorm = 0;
      try {
        gnorm = optim_->step(lr, c.train.grad_clip);
      } catch (const NumericalError& e) {
        throw NumericalError(str(e.what(), " at step ", step, " (stage ", stage_, ")"), true);
      }
      ops_->synchronize();
      const double dt = t.seconds();
      step_time_sum += dt;

      StepMetrics m;
      m.step = step;
      m.stage = stage_;
      m.stage_step = s;
      m.stage_steps = c.train.steps;
      m.total_steps = step_base_ + c.train.steps;
      m.loss = loss;
      m.lr = lr;
      m.grad_norm = gnorm;
      m.tokens = int64_t(total);
      m.seq_len = c.train.seq_len;
      m.step_seconds = dt;
      m.tokens_per_s = total / dt;
      m.elapsed = stage_timer.seconds();
      m.eta = step_time_sum / double(s - first_step_ + 1) * double(c.train.steps - s);
      m.theta = c.rope.theta;
      gather_memory(*ctx_, *ops_, m);
      m.extra_json = samples_json(*ctx_, int64_t(samples.size()), samples_per_step_) + ", " +
                     ring_and_traffic_json(*ctx_, model_->ring_stats()) + ", " + memory_json(*ctx_, *ops_);
      metrics_->write(m);
      if (s % c.train.log_every == 0 || s == c.train.steps || s == first_step_) info(MetricsLog::progress_line(m));
      res.last_step = step;

      if (valid_ && ((c.data.valid_every > 0 && s % c.data.valid_every == 0) || s == c.train.steps)) {
        dog.beat("validation", step);
        report_validation(step);
      }

      if (debug_hold_hook(step, step_base_ + first_step_ > 1)) {
        if (ctx_->world_rank == 0) log_warn(str("holding after step ", step, " until a stop signal (LCT_DEBUG_HOLD_AFTER_STEP)"));
        while (!stop_requested()) {
          dog.beat("held by LCT_DEBUG_HOLD_AFTER_STEP", step);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }

      // Checkpoints: on a stop signal (all ranks agree on this step), every N steps, at the stage end.
      dog.beat("checkpoint decision", step);
      const bool stop_here = stop_requested() || debug_stop_hook(step);
      res.stop_requested = ctx_->world->all_reduce_scalar(stop_here ? 1.0 : 0.0, ReduceOp::Max) > 0;
      const bool last = s == c.train.steps;
      const bool save_last = last && (c.checkpoint.final || !last_stage_);
      if (res.stop_requested || save_last || (c.checkpoint.every > 0 && step % c.checkpoint.every == 0)) {
        dog.beat("writing checkpoint", step);
        TrainState st;
        st.step = step;
        st.stage = stage_;
        st.stage_step = s;
        st.stage_steps = c.train.steps;
        st.data_cursor = loader_->cursor();
        st.optim_t = optim_->t();
        st.seed = int64_t(c.run.seed);
        const SaveReport rep = save_checkpoint(c, save_, *ctx_, *model_, *optim_, *ops_, st);
        res.final_checkpoint = rep.path;
        const double mb = double(rep.bytes_total) / 1e6;
        std::string disk;
        if (std::abs(double(rep.disk_bytes) - double(rep.file_bytes)) > 0.1 * double(rep.file_bytes))
          disk = str(" (", mb_text(double(rep.disk_bytes)), " MB on disk)");
        if (rep.file_bytes > 2 * rep.bytes_total && c.checkpoint.alignment > 4096)
          disk = str(" (", mb_text(double(rep.disk_bytes)), " MB on disk: checkpoint.alignment = ",
                     c.checkpoint.alignment, " leaves gaps between tensors)");
        std::string pruned;
        for (const std::string& p : rep.pruned)
          pruned += str(pruned.empty() ? "; deleted " : ", ", std::filesystem::path(p).filename().string());
        if (!pruned.empty()) pruned += str(" (checkpoint.keep_last = ", c.checkpoint.keep_last, ")");
        info("checkpoint ", rep.path, ": ", mb_text(double(rep.bytes_total)), " MB in ",
             format_number(std::round(rep.seconds * 1000) / 1000), " s (", format_number(std::round(mb / rep.seconds)),
             " MB/s, ", ctx_->layout.topo.world_size, " ranks); data ", mb_text(double(rep.bytes_total)), " MB, file ",
             mb_text(double(rep.file_bytes)), " MB", disk, pruned);
        std::vector<int64_t> per_rank(size_t(ctx_->layout.topo.world_size), 0);
        MPI_Gather(&rep.bytes_this_rank, 1, MPI_INT64_T, per_rank.data(), 1, MPI_INT64_T, 0, ctx_->world_mpi);
        std::string list;
        for (int64_t b : per_rank) list += (list.empty() ? "" : ", ") + std::to_string(b);
        metrics_->write_event(str("{\"event\": \"checkpoint\", \"step\": ", step, ", \"path\": \"", rep.path,
                                  "\", \"seconds\": ", rep.seconds, ", \"bytes\": ", rep.bytes_total,
                                  ", \"file_bytes\": ", rep.file_bytes, ", \"disk_bytes\": ", rep.disk_bytes,
                                  ", \"bytes_per_rank\": [", list, "], \"model_bytes\": ", model_->table().full_numel() * 4,
                                  ", \"flat_param_bytes\": ", model_->table().total * 4,
                                  "}"));
      }
      if (res.stop_requested && !last) {
        info("stopping after step ", step, " on ", stop_label(), ": checkpoint saved; exit code 75 (run the same "
             "command again to resume; under SLURM the job scripts requeue; docs/exit-codes.md)");
        res.interrupted = true;
        return res;
      }
    }
    return res;
  }

 private:
  int stage_;
  bool last_stage_;
  int64_t step_base_;
  SaveInfo save_;  // what each checkpoint records besides tensors: deck, run identity, LR schedule
  int64_t first_step_ = 1;
  Deck deck_;
  Config cfg_;
  bool is_root_ = false;
  int64_t samples_per_step_ = 0;
  std::unique_ptr<ParallelContext> ctx_;
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<ZeroParams> params_;
  std::unique_ptr<Llama> model_;
  std::unique_ptr<Optimizer> optim_;
  std::unique_ptr<DataLoader> loader_, valid_;
  BatchLayout batch_;  // how samples become this rank's micro-batches
  int64_t valid_per_step_ = 0;
  std::unique_ptr<MetricsLog> metrics_;
};

// checkpoint.resume = auto found `meta` in out_dir: refuses (InputError, exit 2) a checkpoint of
// another run, or one past the steps of this deck, naming both sides and the ways out.
void check_resumable(const CheckpointMeta& meta, const Deck& deck, const std::string& out_dir) {
  const TrainState& st = meta.state;
  const int cs = int(st.stage), n = deck.num_stages();
  const std::string found = str("checkpoint.resume = auto found ", meta.path, " (step ", st.step, ", stage ", cs,
                                " step ", st.stage_step, ") in run.out_dir = ", out_dir);
  const std::string ways = str(". Nothing in ", out_dir, " was changed. Either give this run its own output folder "
                               "(run.out_dir in the deck, or --run.out_dir=", out_dir, "-2), or set "
                               "checkpoint.resume = none to train from scratch there (the checkpoints already in ",
                               out_dir, " are kept)");
  if (cs < 1 || cs > n)
    throw InputError(str(found, ", but that is stage ", cs, " and this deck defines ", n, " stage(s)", ways));
  const Deck sd = resolve_run_stage(deck, cs);
  const RunIdentity mine = run_identity(deck, cs);
  const std::vector<std::string> diffs = identity_differences(meta, mine, sd);
  if (!diffs.empty()) {
    std::string list;
    for (const std::string& x : diffs) list += (list.empty() ? "" : "; ") + x;
    throw InputError(str(found, ", but it is a checkpoint of another run: ", list, ways,
                         ". (To continue that checkpoint with this deck on purpose, name it: checkpoint.resume = ",
                         meta.path, ")"));
  }
  if (meta.run_identity.empty())
    log_warn(str(meta.path, " does not record its run identity (written by an older lctrain or imported); "
                 "resuming it as this run's"));
  const int64_t steps = sd.get_int("train.steps"), before = steps_before_stage(deck, cs);
  if (st.stage_step > steps)
    throw InputError(str(found, ", beyond the end of this deck's stage ", cs, ": train.steps = ", steps, " (",
                         sd.origin("train.steps"), "), its last step is ", before + steps, ways,
                         ". To continue that run instead, raise train.steps to at least ", st.stage_step));
}

// checkpoint.resume = PATH (a checkpoint named on purpose, maybe another run's): its stage must be
// one of this deck's and its step within that stage's train.steps, or nothing would be trained
// (the run printed "all stages complete" and exited 0).
void check_named_resume(const CheckpointMeta& meta, const Deck& deck) {
  const TrainState& st = meta.state;
  const int cs = int(st.stage), n = deck.num_stages();
  const std::string named = str("checkpoint.resume = ", meta.path, " (step ", st.step, ", stage ", cs, " step ",
                                st.stage_step, ")");
  if (cs == 0 && st.stage_complete()) return;  // lcconvert from-hf's weights: a completed stage 0, starts stage 1
  if (cs < 1 || cs > n)
    throw InputError(str(named, " is a checkpoint of stage ", cs, " but this deck defines ", n,
                         " stage(s); use a deck with that stage, or start from its weights with model.init_from = ",
                         meta.path));
  const Deck sd = resolve_run_stage(deck, cs);
  const int64_t steps = sd.get_int("train.steps");
  if (st.stage_step > steps)
    throw InputError(str(named, " lies beyond this deck's stage ", cs, ": train.steps = ", steps, " (",
                         sd.origin("train.steps"), "); raise train.steps to at least ", st.stage_step,
                         ", or start from its weights with model.init_from = ", meta.path));
}

}  // namespace

int run_training(const Deck& deck, MPI_Comm world, const RunOptions& opt) {
  int rank = 0;
  MPI_Comm_rank(world, &rank);
  const Deck first = collectively([&] { return resolve_run_stage(deck, 1); });
  const std::string out_dir = first.get("run.out_dir");
  const int nstages = deck.num_stages();
  // Everything `lctrain --dry-run` checks, for every stage, before anything is written (a bad stage
  // 3 fails now, not after stage 1 trained): the same messages as there. The file checks run on
  // rank 0 and its verdict is broadcast.
  {
    const Topology topo = collectively([&] { return detect_topology(world, config_from_deck(first).parallel); });
    ValidateOptions vo;
    vo.only_stage = opt.only_stage;
    vo.topology = &topo;
    vo.check_start_paths = false;  // they depend on what is found to resume (below)
    decide_on_root(world, 0, [&] { validate_run(deck, vo); });
  }

  // A found checkpoint always wins over model.init_from: a requeued job continues.
  const std::string resume = first.get("checkpoint.resume");
  std::string ck;
  if (resume == "auto") {
    ck = find_latest_checkpoint(out_dir, world);
  } else if (resume != "none") {
    decide_on_root(world, 0, [&] {
      const std::string m = missing_start_path(first, "checkpoint.resume");
      if (!m.empty()) throw InputError(m);
    });
    ck = resume;
  }
  StageStart start;
  int begin = opt.only_stage > 0 ? opt.only_stage : 1;
  const int end = opt.only_stage > 0 ? opt.only_stage : nstages;
  if (!ck.empty()) {
    const CheckpointMeta meta = read_checkpoint_meta(ck, world);
    TrainState st = meta.state;
    const int cs = int(st.stage);
    if (resume == "auto") collectively([&] { check_resumable(meta, deck, out_dir); return 0; });
    else collectively([&] { check_named_resume(meta, deck); return 0; });
    // The deck given at resume rules: a raised train.steps continues a stage the checkpoint ended.
    if (cs >= 1 && cs <= nstages) st.stage_steps = deck.stage(cs).get_int("train.steps");
    std::string where = str(ck, " (step ", st.step, ", stage ", cs, " step ", st.stage_step, "/", st.stage_steps, ")");
    if (opt.only_stage > 0) {
      const int N = opt.only_stage;
      if (cs > N || (cs == N && st.stage_complete())) {
        info("stage ", N, " is already complete: ", where);
        return kExitOk;
      }
      if (cs == N) {
        start = {ck, true};
      } else if (cs == N - 1 && st.stage_complete()) {
        start = {ck, false};
      } else {
        throw InputError(str("--stage ", N, " starts from the final checkpoint of stage ", N - 1,
                             ", but the newest checkpoint is ", where, "; run stage ", cs, " to its end first"),
                         true);
      }
    } else if (st.stage_complete()) {
      begin = cs + 1;
      if (begin > nstages) {
        info("all ", nstages, " stage(s) are complete: ", where, " (set checkpoint.resume = none to start over)");
        return kExitOk;
      }
      start = {ck, false};
    } else {
      begin = cs;
      start = {ck, true};
    }
    info("resuming from ", where);
  } else if (opt.only_stage > 1) {
    throw InputError(str("--stage ", opt.only_stage, " starts from the final checkpoint of stage ", opt.only_stage - 1,
                         ", but ", out_dir, "/checkpoints has none; run the earlier stages first"),
                     true);
  }

  if (start.checkpoint.empty())  // the first stage run starts from model.init_from (or random weights)
    decide_on_root(world, 0, [&] {
      const std::string m = missing_start_path(resolve_run_stage(deck, begin), "model.init_from");
      if (!m.empty()) throw InputError(m);
    });
  // Only now, with the run's start settled, is anything written to out_dir.
  const std::string deck_text = collectively([&] { return effective_deck_text(deck); });
  agree(world, [&] {
    if (rank != 0) return;
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) throw InputError(str("cannot create run.out_dir '", out_dir, "': ", ec.message()));
    write_text_file_atomically(out_dir + "/effective.deck", deck_text);
  });

  Watchdog dog(first.get_float("run.hang_timeout"));
  for (int s = begin; s <= end; ++s) {
    StageResult r;
    {
      StageRunner runner(deck, s, world, steps_before_stage(deck, s), start, deck_text);
      r = runner.run(dog);
    }
    if (r.interrupted) return kExitRequeue;
    start = {r.final_checkpoint, false};
    if (r.stop_requested && s < end) {
      info("stage ", s, " complete; stopping on ", stop_label(), " before stage ", s + 1,
           ": exit code 75 (run the same command again to resume; docs/exit-codes.md)");
      return kExitRequeue;
    }
  }
  return kExitOk;
}

}  // namespace lct
