// Stop signals: SIGUSR1 / SIGTERM (what SLURM sends before a time limit, and what mpirun passes on
// to the ranks when it gets Ctrl-C) and SIGINT (Ctrl-C on a single `./lctrain`) ask the job to stop
// after the current step: ranks agree on the step, save a checkpoint and exit with 75 ("checkpointed,
// requeue me"). A second SIGINT ends the process at once with 130 (checkpoints already written
// stay; a half-written one is a .tmp that the next save removes). SIGINT is left alone when it was
// ignored at start (a background job of a script).
#pragma once

namespace lct {

// Installs the handlers (once, at start-up).
void install_stop_signals();
// Whether a stop signal arrived on this rank (async-signal-safe flag).
bool stop_requested();
// The signal number that arrived, 0 if none.
int stop_signal();
// "signal 2 (SIGINT, Ctrl-C)", "signal 15 (SIGTERM)", "signal 10 (SIGUSR1)", or "signal N".
const char* signal_label(int sig);

}  // namespace lct
