// What a training job would reject at its start, checked without MPI and without reading the data:
// `lctrain --dry-run` runs it, and so does the trainer before it writes anything, so both give the
// same messages (InputError, exit 2). Covers every stage of the deck, so a bad stage 3 is found
// before stage 1 trains for hours.
#pragma once

#include <string>
#include <vector>

#include "deck/deck.h"
#include "parallel/layout.h"

namespace lct {

struct ValidateOptions {
  int only_stage = 0;             // --stage N: that stage only (0 = all)
  int world_size = 0;             // 0 = unknown: only the layout rules that hold for any world size
  int ranks_per_node = 0;         // with world_size: 0 = the stage's parallel.ranks_per_node, else one node
  const Topology* topology = nullptr;  // the job's detected nodes (training); overrides the two above
  bool check_start_paths = true;  // model.init_from of the first stage run, checkpoint.resume = <path>
};

struct ValidateReport {
  std::vector<std::string> notes;  // e.g. a path that an earlier stage of the deck will create
  std::string summary;             // one line: what was checked
};

// InputError (collective-safe: every caller reaches the same verdict from the same inputs) on the
// first problem:
//  - --stage beyond the deck's stages; run.out_dir differing between stages; both
//    checkpoint.override_lr_schedule and checkpoint.use_checkpoint_lr_schedule set;
//  - per stage: the model shape, the layout rules that do not depend on the world size (tp divides
//    heads, kv heads, ffn_dim, vocab; seq_len divisible by cp or 2 cp; sequence-parallel tokens
//    divisible by tp) and, with a world size, the rest (tp x cp divides it, dp, tp inside a node);
//  - data.train empty, data.train / data.valid entries that match no file;
//  - model.init_from of the first stage and checkpoint.resume = <path> that do not exist, unless
//    an earlier stage of this deck writes them (then a note).
ValidateReport validate_run(const Deck& deck, const ValidateOptions& opt);

// The layout rules of one resolved stage (parallel/planner.h local_shape; with a topology also
// make_layout), with the messages the trainer gives.
void check_stage_layout(const Deck& stage_deck, const Topology* topology);

// The message for a start path (model.init_from, checkpoint.resume) of a resolved stage that does
// not exist, "" when it is empty or exists.
std::string missing_start_path(const Deck& stage_deck, const std::string& key);

// data.train (non-empty, every entry matches a file) and data.valid (every entry matches a file).
void check_stage_data(const Deck& stage_deck);

}  // namespace lct
