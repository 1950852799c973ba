#include "train/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lct {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = long(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

MetricsLog::MetricsLog(const std::string& out_dir, bool is_root) {
  if (!is_root) return;
  const std::string path = out_dir + "/metrics.jsonl";
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) throw Error(kExitFailure, str("cannot open ", path, " for appending: ", std::strerror(errno)));
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const StepMetrics& m) {
  if (!f_) return;
  nlohmann::ordered_json j;
  j["step"] = m.step;
  j["stage"] = m.stage;
  j["stage_step"] = m.stage_step;
  j["loss"] = m.loss;
  j["lr"] = m.lr;
  j["grad_norm"] = m.grad_norm;
  j["tokens"] = m.tokens;
  j["tokens_per_s"] = m.tokens_per_s;
  j["step_seconds"] = m.step_seconds;
  j["seq_len"] = m.seq_len;
  j["rope_theta"] = m.theta;
  j["peak_rss_bytes"] = m.peak_rss_bytes;
  j["peak_rss_bytes_per_rank"] = m.peak_rss_per_rank;
  j["peak_device_bytes"] = m.peak_device_bytes;
  j["elapsed"] = m.elapsed;
  std::string line = j.dump();
  if (!m.extra_json.empty()) line = line.substr(0, line.size() - 1) + "," + m.extra_json + "}";
  std::fprintf(f_, "%s\n", line.c_str());
  std::fflush(f_);
}

void MetricsLog::write_event(const std::string& json_object) {
  if (!f_) return;
  std::fprintf(f_, "%s\n", json_object.c_str());
  std::fflush(f_);
}

std::string MetricsLog::progress_line(const StepMetrics& m) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "step %6lld/%lld | stage %d | loss %.4f | lr %.2e | gnorm %.3f | %.0f tok/s | elapsed %s | ETA %s",
                (long long)m.step, (long long)m.total_steps, m.stage, m.loss, m.lr, m.grad_norm, m.tokens_per_s,
                format_duration(m.elapsed).c_str(), format_duration(m.eta).c_str());
  return buf;
}

}  // namespace lct
