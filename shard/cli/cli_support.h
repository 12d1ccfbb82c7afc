// Helpers shared by the shardwise CLI's subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "common/logging.h"
#include "common/status.h"

namespace shardwise::cli {

// Where the committed default model lives (assets/models/stories260K).
inline std::string default_model_dir() { return SHARDWISE_DEFAULT_MODEL_DIR; }

// Logs a failed status to stderr and ends the subcommand with exit code 1.
[[noreturn]] inline void fail(const Status& status) {
  log()->error("{}", status.to_string());
  throw CLI::RuntimeError(1);
}

template <typename T>
T value_or_fail(StatusOr<T> result) {
  if (!result.ok()) fail(result.status());
  return std::move(result).value();
}

}  // namespace shardwise::cli
