// HDF5 checkpoints (docs/checkpoint-format.md). One file per checkpoint, written collectively
// through MPI-IO: every tensor is stored at its full logical shape under /model/<HF name>
// (fp32 master weights) and /optim/exp_avg|exp_avg_sq/<HF name>, and each rank writes only its
// own part (its tp slice; its ZeRO shard, or nothing when another replica holds the same data).
// Files appear atomically: written as step_XXXXXXXX.h5.tmp, closed, renamed, then `latest` is
// updated; old checkpoints are pruned only after a newer one is complete. Loading reshards: each
// rank reads the slices its own layout needs, so any tp/cp/dp/zero can resume any checkpoint.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/checkpoint_header.h"
#include "deck/config.h"
#include "model/llama.h"
#include "ops/ops.h"
#include "optim/optimizer.h"
#include "parallel/context.h"

namespace lct {

// The file's metadata (checkpoint_header.h) and where it lies.
struct CheckpointMeta : CheckpointHeader {
  std::string path;
  bool has_moments = false;
};

struct SaveReport {
  std::string path;
  double seconds = 0;
  int64_t bytes_this_rank = 0;  // tensor bytes this rank wrote
  int64_t bytes_total = 0;      // over all ranks: the data
  int64_t file_bytes = 0;       // the file's size as `ls -l` shows it (data + HDF5 metadata + alignment gaps)
  int64_t disk_bytes = 0;       // blocks allocated on disk (`du`): less when the alignment gaps are holes
  std::vector<std::string> pruned;  // older checkpoints of this run deleted by checkpoint.keep_last
};

// What a checkpoint records besides the tensors and the layout.
struct SaveInfo {
  std::string deck_text;                        // the effective deck
  std::string run_identity, run_identity_keys;  // train/run_identity.h
  std::vector<std::string> own_identities;      // every stage's identity of this deck: the files keep_last may prune
  LrScheduleRecord lr;                          // the schedule this stage runs with
};

// Collective over ctx.world. Writes <out_dir>/checkpoints/step_N.h5 (.tmp, then renamed), then
// points `latest` at it, then prunes: older checkpoints of this deck's runs (own_identities) beyond
// checkpoint.keep_last are deleted; the file just written, any file with a higher step and files
// of other runs (or without an identity) never are.
SaveReport save_checkpoint(const Config& cfg, const SaveInfo& info, ParallelContext& ctx, Llama& model, Optimizer& opt,
                           Ops& ops, const TrainState& st);

// The checkpoint `<dir>/latest` names ("" when there is no such file or it names nothing).
std::string latest_checkpoint_name(const std::string& checkpoints_dir);

// Reads and validates a checkpoint's metadata on `root` and broadcasts the verdict: every rank
// gets the same result or the same InputError (a bad file cannot hang the other ranks).
CheckpointMeta read_checkpoint_meta(const std::string& path, MPI_Comm comm, int root = 0);
// Serial variant (no MPI): throws InputError when the file is not a valid checkpoint.
CheckpointMeta read_checkpoint_meta_local(const std::string& path);
// The newest valid checkpoint under <out_dir>/checkpoints ("" if none), decided on rank 0.
std::string find_latest_checkpoint(const std::string& out_dir, MPI_Comm comm);

// InputError unless the checkpoint's model shape equals `m` (names the differing key).
void check_model_matches(const CheckpointMeta& meta, const ModelConfig& m);

// Loads the weights into the model's tp slices; with `opt`, also the master weights of its shard
// and, when `moments`, AdamW's moments and step count. Reads only what this rank needs.
void load_checkpoint(const std::string& path, Llama& model, Ops& ops, Optimizer* opt, bool moments);

// Weights only, for evaluation and init_from.
void load_model_weights(Llama& model, Ops& ops, const std::string& path);

}  // namespace lct
