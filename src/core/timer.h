// Wall-clock timing.
#pragma once

#include <chrono>

namespace lct {

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

class Timer {
 public:
  Timer() : t0_(now_seconds()) {}
  void reset() { t0_ = now_seconds(); }
  double seconds() const { return now_seconds() - t0_; }

 private:
  double t0_;
};

}  // namespace lct
