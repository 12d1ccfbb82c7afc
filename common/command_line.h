// The command-line conventions every shardwise binary keeps (docs/operations.md): one set of
// exit codes, and what a usage error prints. (--version: common/version.h.)
#pragma once

#include <CLI/CLI.hpp>
#include <optional>

namespace shardwise {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeFailure = 1;  // the arguments were fine; running failed
inline constexpr int kExitUsage = 2;           // the command line (or --config file) is wrong

// Parses the command line (running any subcommand callbacks). Returns the code to exit with
// when the program should stop now: 0 after --help or --version, kExitUsage after a usage
// error (printed; a mistyped subcommand lists the ones that exist), or the code a callback
// threw as CLI::RuntimeError. nullopt: go on.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace shardwise
