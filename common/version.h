// What every shardwise binary says to --version: the project version, the git commit it was
// built from and how it was built. The commit is read at build time (common/version_info.cmake),
// so a rebuild after a commit prints the new one.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

namespace shardwise {

// "shardwise-shard 0.1.0 (commit 5a43acc1f0e2, RelWithDebInfo, CUDA on)"; the commit ends in
// "-dirty" when tracked files differed from it, and is "unknown" outside a git checkout.
std::string version_line(std::string_view program);

// Adds --version to `app`: prints version_line(program) and exits 0.
void add_version_flag(CLI::App& app, std::string_view program);

}  // namespace shardwise
