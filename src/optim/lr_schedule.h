// Learning-rate schedules: linear warmup from 0, then constant, cosine or linear decay to min_lr
// at the stage's last step. Each stage has its own schedule (step counts restart per stage).
#pragma once

#include <cstdint>
#include <string>

namespace lct {

// step is 1-based within the stage; steps is the stage's length.
double lr_at(int64_t step, int64_t steps, double lr, double min_lr, int64_t warmup, const std::string& schedule);

}  // namespace lct
