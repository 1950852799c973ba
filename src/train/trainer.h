// The trainer: runs a deck's stages (progressive context extension), each with its own layout,
// RoPE theta, LR schedule and data, over steps of gradient accumulation on every dp replica.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "deck/deck.h"

namespace lct {

struct RunOptions {
  int only_stage = 0;  // --stage N: run stage N only (resuming from stage N-1's final checkpoint)
};

// Runs the training job and returns the exit code every rank should use: kExitOk when done,
// kExitRequeue when it checkpointed on a signal. Errors are thrown (see core/error.h).
int run_training(const Deck& deck, MPI_Comm world, const RunOptions& opt);

// The global step number at which stage `stage` (1-based) starts, minus one.
int64_t steps_before_stage(const Deck& deck, int stage);

}  // namespace lct
