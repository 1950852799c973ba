// The self-describing part of a checkpoint file: root attributes (format, version, model config,
// RoPE, effective deck, layout at save time, provenance) and the /train attributes. One writer and
// one reader, shared by the training checkpoints and `lcconvert from-hf`.
#pragma once

#include <cstdint>
#include <string>

#include "deck/config.h"
#include "io/h5file.h"

namespace lct {

constexpr const char* kCheckpointFormat = "lctrain-checkpoint";
constexpr int64_t kCheckpointVersion = 1;

struct TrainState {
  int64_t step = 0;         // global number of the last completed step
  int64_t stage = 1;
  int64_t stage_step = 0;   // steps completed in that stage
  int64_t stage_steps = 0;  // that stage's length: the stage is complete when stage_step == stage_steps
  int64_t data_cursor = 0;  // global sample index of the next step (data/loader.h)
  int64_t optim_t = 0;      // optimizer steps taken (AdamW bias correction)
  int64_t seed = 0;         // run.seed: with the cursor, it fixes the data order
  bool stage_complete() const { return stage_step >= stage_steps; }
};

// The LR schedule a stage ran with (optim/lr_schedule.h): lr_at(step, decay_steps, lr, min_lr,
// warmup_steps, schedule). Checkpoints of older lctrain versions do not record it (known = false).
struct LrScheduleRecord {
  bool known = false;
  double lr = 0, min_lr = 0;
  int64_t warmup_steps = 0, decay_steps = 0;  // decay_steps: the step the decay reaches min_lr
  std::string schedule = "cosine";
};

struct CheckpointHeader {
  ModelConfig model;
  RopeConfig rope;
  int64_t seq_len = 0;  // the stage's training length
  std::string deck_text, init_from, optimizer, run_name;
  int64_t world_size = 1, tp = 1, cp = 1, dp = 1, zero = 0, nodes = 1;  // layout at save time
  TrainState state;
  // What makes the run (train/run_identity.h): "<run.name>:<hash>" and the key = value lines hashed.
  // Empty in files of older versions and in `lcconvert from-hf` imports.
  std::string run_identity, run_identity_keys;
  LrScheduleRecord lr_schedule;
};

// Writes the root and /train attributes (creating /train). Collective when f was opened with
// MPI-IO: every rank passes the same header.
void write_checkpoint_header(H5File& f, const CheckpointHeader& h);
// Reads them; InputError naming the file when one is missing or malformed, or the format or
// version is not ours.
CheckpointHeader read_checkpoint_header(const H5File& f);

}  // namespace lct
