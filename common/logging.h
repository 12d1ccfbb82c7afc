// Process-wide logger (spdlog) writing to stderr, so stdout stays free for machine-readable
// output such as the CLI's JSON. Two formats: text for people, and json for log collectors
// (one object per line: time, level, rank, replica, message).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace shardwise {

// The shared logger; created on first use with level "info".
std::shared_ptr<spdlog::logger> log();

// level: trace, debug, info, warn, error, critical or off. Returns false for an unknown level.
bool set_log_level(std::string_view level);

// format: "text" or "json". Returns false for an unknown format.
bool set_log_format(std::string_view format);

// Names this process's MPI rank and model replica in every line once the process knows them
// (text: "[rank N]"; json: "rank" and "replica", null until then).
void set_log_rank(int rank, int replica);

// One json log line (without the newline): {"time":"2025-05-20T08:15:02.042Z","level":"info",
// "rank":0,"replica":null,"message":"..."}; rank or replica < 0 write null. Invalid UTF-8 in
// the message becomes U+FFFD, so every line parses.
std::string json_log_line(const spdlog::details::log_msg& msg, int rank, int replica);

}  // namespace shardwise
