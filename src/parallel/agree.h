// Turning errors that may strike some ranks only into one collective verdict.
#pragma once

#include <functional>

#include <mpi.h>

#include "core/error.h"

namespace lct {

// For work every rank does alike and deterministically (deck resolution, layout checks): each
// rank reaches the same verdict, so its errors are marked collective (rank 0 prints them once).
template <class F>
auto collectively(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw e.as_collective();
  }
}

// Runs fn on every rank of comm. If it throws an lct::Error (or std::exception) on any rank, every
// rank throws the same collective Error carrying the lowest failing rank's message and code, so
// the job stops with one clear message instead of some ranks waiting in a collective.
void agree(MPI_Comm comm, const std::function<void()>& fn);

// Decides on one rank (root) and broadcasts the verdict: fn runs only on root.
void decide_on_root(MPI_Comm comm, int root, const std::function<void()>& fn);

}  // namespace lct
