// Turning errors that may strike some ranks only into one collective verdict.
#pragma once

#include <functional>

#include <mpi.h>

namespace lct {

// Runs fn on every rank of comm. If it throws an lct::Error (or std::exception) on any rank, every
// rank throws the same collective Error carrying the lowest failing rank's message and code, so
// the job stops with one clear message instead of some ranks waiting in a collective.
void agree(MPI_Comm comm, const std::function<void()>& fn);

// Decides on one rank (root) and broadcasts the verdict: fn runs only on root.
void decide_on_root(MPI_Comm comm, int root, const std::function<void()>& fn);

}  // namespace lct
