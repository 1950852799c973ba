#include "parallel/watchdog.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"

namespace lct {

Watchdog::Watchdog(double timeout_seconds) : timeout_(timeout_seconds) {
  last_ = now_seconds();
  if (timeout_ > 0) thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::beat(const char* what, int64_t step) {
  what_ = what;
  if (step >= 0) step_ = step;
  last_ = now_seconds();
}

void Watchdog::run() {
  std::unique_lock<std::mutex> lock(mu_);
  const double poll = std::min(1.0, timeout_ / 4);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::duration<double>(poll));
    if (stop_) break;
    const double idle = now_seconds() - last_.load();
    if (idle > timeout_) {
      log_error(str("no progress for ", int(idle), " s (run.hang_timeout = ", timeout_, "); last activity: ",
                    what_.load(), step_.load() >= 0 ? str(" at step ", step_.load()) : std::string(),
                    ". Ending the job (a rank may be stuck in a collective or a peer died)."));
      std::fflush(stdout);
      std::_Exit(kExitFailure);  // the launcher then stops every other rank
    }
  }
}

}  // namespace lct
