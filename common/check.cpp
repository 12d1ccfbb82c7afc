#include "common/check.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "common/logging.h"

namespace shardwise {
namespace {
std::atomic<int> g_rank{-1};
std::atomic<int> g_device{-1};
}  // namespace

void set_check_context_rank(int rank) { g_rank = rank; }
void set_check_context_device(int device) { g_device = device; }

void check_failed(const char* library, long long code, const char* error_text,
                  const char* expression, const char* file, int line) {
  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  log()->critical("{} error {} ({}) at {}:{}: {} [rank {}, host {}, device {}]", library, code,
                  error_text, file, line, expression, g_rank.load(), host, g_device.load());
  log()->flush();
  std::fflush(stderr);
  std::abort();
}

}  // namespace shardwise
