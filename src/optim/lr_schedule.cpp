#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace lct {

double lr_at(int64_t step, int64_t steps, double lr, double min_lr, int64_t warmup, const std::string& schedule) {
  if (warmup > 0 && step <= warmup) return lr * double(step) / double(warmup);
  if (schedule == "constant" || steps <= warmup) return lr;
  const double progress = std::clamp(double(step - warmup) / double(std::max<int64_t>(1, steps - warmup)), 0.0, 1.0);
  if (schedule == "linear") return lr - (lr - min_lr) * progress;
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));  // cosine
}

}  // namespace lct
