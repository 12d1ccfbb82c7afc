#pragma once

#include <CLI/CLI.hpp>

namespace shardwise::cli {

// `shardwise logits` and `shardwise generate`: run a model on the CPU or (--device cuda) a GPU.
void add_model_commands(CLI::App& app);

}  // namespace shardwise::cli
