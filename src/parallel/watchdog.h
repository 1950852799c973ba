// The hang watchdog (run.hang_timeout): if a rank makes no progress for that long, it prints what
// it was last doing and ends the job, so a rank stuck in a collective never hangs the allocation.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace lct {

class Watchdog {
 public:
  explicit Watchdog(double timeout_seconds);  // 0 = disabled
  ~Watchdog();
  // Records progress; `what` must be a string literal (it is kept by pointer).
  void beat(const char* what, int64_t step = -1);

 private:
  void run();
  double timeout_;
  std::atomic<double> last_{0};
  std::atomic<const char*> what_{"start-up"};
  std::atomic<int64_t> step_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace lct
