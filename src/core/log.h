// Logging: progress and info lines come from rank 0 only; warnings and errors may come from any rank
// and carry the rank. The rank is set once at start-up (log_init) and never changes.
#pragma once

#include <string>

#include "core/error.h"

namespace lct {

void log_init(int world_rank, int world_size);
int log_rank();

// Rank 0 only, to stdout.
void log_info(const std::string& msg);
// Any rank, to stderr, prefixed with the rank when the job has several.
void log_warn(const std::string& msg);
void log_error(const std::string& msg);

template <class... A> void info(const A&... a) { log_info(str(a...)); }
template <class... A> void warn(const A&... a) { log_warn(str(a...)); }

}  // namespace lct
