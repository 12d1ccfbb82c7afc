#include "common/version.h"

#include <fmt/format.h>

#include "common/version_info.h"

namespace shardwise {

std::string version_line(std::string_view program) {
  const VersionInfo& info = version_info();
  std::string build = fmt::format("{}, CUDA {}", info.build_type, info.cuda ? "on" : "off");
  if (*info.sanitizers != '\0') build += fmt::format(", sanitizers {}", info.sanitizers);
  return fmt::format("{} {} (commit {}, {})", program, info.version, info.commit, build);
}

void add_version_flag(CLI::App& app, std::string_view program) {
  app.set_version_flag("--version", version_line(program),
                       "Print the version, git commit and build type, and exit");
}

}  // namespace shardwise
