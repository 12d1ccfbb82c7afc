#include "coordinator/process_metrics.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>

namespace shardwise {
namespace {

void sample(std::string& out, const char* name, const char* type, const char* help,
            std::optional<double> value) {
  if (!value) return;
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, *value);
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// /proc/self/statm: sizes in pages; the first is the virtual size, the second the resident.
std::optional<double> statm_bytes(int field) {
  std::ifstream in("/proc/self/statm");
  double pages[2] = {};
  if (!(in >> pages[0] >> pages[1])) return std::nullopt;
  return pages[field] * static_cast<double>(sysconf(_SC_PAGESIZE));
}

std::optional<double> open_fds() {
  std::error_code error;
  double n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++n;
  }
  if (error) return std::nullopt;
  return n - 1;  // the iterator's own descriptor
}

std::optional<double> max_fds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<double>(limit.rlim_cur);
}

// Boot time (/proc/stat btime) plus the process's start in clock ticks after boot (field 22 of
// /proc/self/stat, counted after the command name's closing parenthesis).
std::optional<double> start_time_seconds() {
  std::ifstream stat_file("/proc/stat");
  std::string key;
  double boot = -1;
  while (stat_file >> key) {
    if (key == "btime") {
      stat_file >> boot;
      break;
    }
    stat_file.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  std::ifstream self("/proc/self/stat");
  const std::string line((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  const size_t paren = line.rfind(')');
  if (boot < 0 || paren == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(paren + 2));  // from field 3, the state
  std::string field;
  for (int i = 3; i < 22 && fields >> field; ++i) {
  }
  double ticks = 0;
  if (!(fields >> ticks)) return std::nullopt;
  return boot + ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

void render_process_metrics(std::string& out) {
  sample(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds.",
         cpu_seconds());
  sample(out, "process_resident_memory_bytes", "gauge", "Resident memory size, bytes.",
         statm_bytes(1));
  sample(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size, bytes.",
         statm_bytes(0));
  sample(out, "process_open_fds", "gauge", "Open file descriptors.", open_fds());
  sample(out, "process_max_fds", "gauge", "Most file descriptors the process may open.", max_fds());
  sample(out, "process_start_time_seconds", "gauge",
         "Start time of the process since the Unix epoch, seconds.", start_time_seconds());
}

}  // namespace shardwise
