// Progress lines (rank 0, every log_every steps) and <out_dir>/metrics.jsonl (one JSON object per
// optimizer step; a resumed run appends, and the last row for a step is the valid one).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace lct {

struct StepMetrics {
  int64_t step = 0;            // global step number
  int64_t stage_step = 0, stage_steps = 0, total_steps = 0;
  int stage = 1;
  double loss = 0, lr = 0, grad_norm = 0;
  int64_t tokens = 0;          // target tokens that counted in this step (global)
  int64_t seq_len = 0;
  double step_seconds = 0, tokens_per_s = 0, elapsed = 0, eta = 0;
  int64_t peak_rss_bytes = 0;  // max over ranks
  std::vector<int64_t> peak_rss_per_rank;
  int64_t peak_device_bytes = 0;
  double theta = 0;
  std::string extra_json;      // more fields, already formatted as `"key": value, ...` (may be empty)
};

class MetricsLog {
 public:
  // Opens <out_dir>/metrics.jsonl for appending (rank 0 only; other ranks keep it closed).
  MetricsLog(const std::string& out_dir, bool is_root);
  ~MetricsLog();
  void write(const StepMetrics& m);
  void write_event(const std::string& json_object);  // e.g. checkpoint or validation records
  static std::string progress_line(const StepMetrics& m);

 private:
  FILE* f_ = nullptr;
};

std::string format_duration(double seconds);

}  // namespace lct
