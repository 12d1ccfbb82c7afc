// Process-wide logger (spdlog) writing to stderr, so stdout stays free for machine-readable
// output such as the CLI's JSON.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace shardwise {

// The shared logger; created on first use with level "info".
std::shared_ptr<spdlog::logger> log();

// level: trace, debug, info, warn, error, critical or off. Returns false for an unknown level.
bool set_log_level(std::string_view level);

// Adds "[rank N]" to every line once the process knows its rank.
void set_log_rank(int rank);

}  // namespace shardwise
