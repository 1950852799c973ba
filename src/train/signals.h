// SIGUSR1 / SIGTERM (what SLURM sends before a time limit) ask the job to stop after the current
// step: ranks agree on the step, save a checkpoint and exit with 75 ("checkpointed, requeue me").
#pragma once

namespace lct {

// Installs the handlers (once, at start-up).
void install_stop_signals();
// Whether a stop signal arrived on this rank (async-signal-safe flag).
bool stop_requested();
// The signal number that arrived, 0 if none.
int stop_signal();

}  // namespace lct
