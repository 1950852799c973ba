// `lctrain --plan DECK [--world-size N] [--ranks-per-node R]`: the layout, memory, traffic and
// step-time estimate of every stage for a machine that need not exist (no MPI). Writes
// <out_dir>/layout.json (as the run would) and <out_dir>/plan.json (the figures, machine-readable).
#pragma once

#include <ostream>

#include "deck/deck.h"

namespace lct {

// world_size / ranks_per_node: 0 = not given; then SLURM's variables inside an allocation
// (SLURM_NTASKS; SLURM_NTASKS_PER_NODE or the first count of SLURM_TASKS_PER_NODE), and for
// ranks per node parallel.ranks_per_node or the cluster preset's GPUs per node. only_stage > 0
// plans that stage alone. Returns kExitOk; bad input throws InputError.
int run_plan(const Deck& deck, int world_size, int ranks_per_node, std::ostream& out, int only_stage = 0);

}  // namespace lct
