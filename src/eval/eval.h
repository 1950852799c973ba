// `lctrain --eval DECK`: needle-in-a-haystack / passkey / key-value retrieval over a grid of
// context lengths x needle depths ([eval] section), scored by exact match of the answer tokens
// under teacher forcing (eval/answer_scorer.h). Long prompts run with ring attention over the
// deck's parallel.cp ranks; the layout comes from the deck's [parallel] keys. Each length builds
// its model with the evaluated stage's RoPE (theta as resolved for that stage; dynamic scaling
// sees the evaluation length). docs/longctx.md.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/synth.h"
#include "deck/config.h"
#include "deck/deck.h"
#include "eval/niah_table.h"
#include "model/llama.h"
#include "ops/ops.h"
#include "parallel/context.h"

namespace lct {

struct EvalOptions {
  int stage = 0;           // the stage whose model and RoPE are evaluated (0: the deck's last stage)
  std::string checkpoint;  // "" = that stage's final checkpoint in run.out_dir, else model.init_from (.h5)
};

// Evaluates every task of eval.tasks and writes <out_dir>/<task>[_no_needle][_stageN].csv (the
// _stageN suffix when the deck has several stages), printing each table. Collective over `world`;
// returns the exit code (errors are thrown, see core/error.h).
int run_eval(const Deck& deck, MPI_Comm world, const EvalOptions& opt = {});

// The pieces run_eval is made of (tests call them with hand-set weights).
struct EvalGrid {
  SynthSpec spec;                       // the task (one question per prompt)
  std::vector<int64_t> lengths, depths;
  int64_t samples = 4;
  uint64_t seed = 777;
  bool with_needle = true;
  int64_t tokens_per_rank = 16384;      // micro-batches hold up to this many tokens per rank (at least one prompt)
};

struct EvalModel {
  ModelConfig model;
  RopeConfig rope;
  bool sequence_parallel = true, zigzag = true;
  int attention_tile = 64;
};

// Fills a freshly built model's parameters (collective over the job, e.g. load_model_weights).
using WeightLoader = std::function<void(Llama&)>;

// Runs the grid and returns its cells (the same on every rank). Prompts of a length are shared out
// over the dp replicas; each micro-batch is one forward pass. load() runs once, on the first
// length's model; later lengths copy its parameters.
std::vector<EvalCell> evaluate_grid(const EvalGrid& grid, const EvalModel& em, ParallelContext& ctx, Ops& ops,
                                    const WeightLoader& load);

// The synthetic spec the training data was made with: the `tokenizer` attribute of the first file
// of data.train when it is an `lcdata synth` file, else the defaults (with a warning on rank 0).
SynthSpec training_synth_spec(const std::vector<std::string>& data_train, const std::string& format);

}  // namespace lct
