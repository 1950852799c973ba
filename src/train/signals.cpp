#include "train/signals.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>

namespace lct {
namespace {
// Written only by the signal handler: the one piece of process-wide mutable state a signal
// handler needs (it cannot reach any object).
volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_interrupts = 0;

void say(const char* msg) {  // async-signal-safe
  ssize_t r = ::write(STDERR_FILENO, msg, std::strlen(msg));
  (void)r;
}

extern "C" void on_stop_signal(int sig) {
  if (sig == SIGINT) {
    if (g_interrupts++ > 0) {
      say("\nlctrain: second SIGINT: quitting now (exit code 130); the checkpoints already written are kept\n");
      ::_exit(130);
    }
    say("\nlctrain: SIGINT: finishing this step, then saving a checkpoint and exiting with code 75 "
        "(Ctrl-C again quits at once, without it)\n");
  }
  if (g_stop_signal == 0) g_stop_signal = sig;
}
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // SIGINT stays ignored where the parent ignored it (a `cmd &` in a script: Ctrl-C at the terminal
  // is not meant for it), as is the convention for interactive signals.
  struct sigaction old {};
  if (sigaction(SIGINT, nullptr, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, nullptr);
}

bool stop_requested() { return g_stop_signal != 0; }
int stop_signal() { return int(g_stop_signal); }

const char* signal_label(int sig) {
  static thread_local char buf[48];
  const char* name = sig == SIGINT ? "SIGINT, Ctrl-C" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : nullptr;
  if (name)
    std::snprintf(buf, sizeof buf, "signal %d (%s)", sig, name);
  else
    std::snprintf(buf, sizeof buf, "signal %d", sig);
  return buf;
}

}  // namespace lct
