// Process memory figures from the kernel: the peak resident set (VmHWM) is what metrics.jsonl
// reports and what the memory tests assert on.
#pragma once

#include <cstdint>

namespace lct {

// Peak resident set size of this process in bytes (VmHWM from /proc/self/status).
int64_t peak_rss_bytes();
// Current resident set size in bytes (VmRSS).
int64_t current_rss_bytes();
// Resets the peak to the current RSS (writes "5" to /proc/self/clear_refs); false if not allowed.
bool reset_peak_rss();

}  // namespace lct
