#include "core/log.h"

#include <cstdio>

namespace lct {
namespace {
// Written once by log_init before any thread starts; read-only afterwards.
int g_rank = 0;
int g_size = 1;
}  // namespace

void log_init(int world_rank, int world_size) {
  g_rank = world_rank;
  g_size = world_size;
}

int log_rank() { return g_rank; }

void log_info(const std::string& msg) {
  if (g_rank != 0) return;
  std::fprintf(stdout, "%s\n", msg.c_str());
  std::fflush(stdout);
}

static void to_stderr(const char* kind, const std::string& msg) {
  if (g_size > 1)
    std::fprintf(stderr, "lctrain %s [rank %d]: %s\n", kind, g_rank, msg.c_str());
  else
    std::fprintf(stderr, "lctrain %s: %s\n", kind, msg.c_str());
  std::fflush(stderr);
}

void log_warn(const std::string& msg) { to_stderr("warning", msg); }
void log_error(const std::string& msg) { to_stderr("error", msg); }

}  // namespace lct
