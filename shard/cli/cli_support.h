// Helpers shared by the shardwise CLI's subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "common/logging.h"
#include "common/status.h"

namespace shardwise::cli {

// The default model, stories260K: in the source tree the build came from, or, in an installed
// tree (scripts/install-runtime.sh), share/shardwise/models/stories260K beside bin/.
std::string default_model_dir();

// Validates --model: "model folder DIR does not exist" (or "is not a folder").
CLI::Validator existing_model_dir();

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
