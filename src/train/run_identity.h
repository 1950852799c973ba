// What makes a run, recorded in every checkpoint: run.name and a hash of the resolved values of
// the keys that define the model and the data of a stage (architecture, initialisation, RoPE,
// seq_len, data files and order, seed). Not the schedule (steps, lr, warmup, batch) and not the
// parallel layout, which may change when a run is resumed (docs/checkpoint-format.md).
//
// checkpoint.resume = auto uses it to refuse another run's checkpoint in the same run.out_dir;
// checkpoint.keep_last prunes only checkpoints of the same identity.
#pragma once

#include <string>
#include <vector>

#include "ckpt/checkpoint_header.h"
#include "deck/deck.h"

namespace lct {

struct RunIdentity {
  std::string name;  // run.name
  std::string keys;  // "key = value\n" lines of the identity keys, in schema order
  std::string hash;  // 16 hex digits of FNV-1a 64 over `keys`
  std::string id() const { return name + ":" + hash; }
};

// The keys hashed (besides run.name).
const std::vector<std::string>& run_identity_keys();

// The identity of stage n (1-based) of a deck: its resolved values (train/resolve.h).
RunIdentity run_identity(const Deck& deck, int stage);

// Why a checkpoint's identity differs from `mine`: "run.name = 'a' in the checkpoint, 'b' in the
// deck" and "model.dim = 32 in the checkpoint, 64 in the deck (x.deck:7)" pieces (at most `max`;
// `deck` gives the origins). Empty when they are the same run.
std::vector<std::string> identity_differences(const CheckpointHeader& ck, const RunIdentity& mine, const Deck& stage_deck,
                                              size_t max = 4);

}  // namespace lct
