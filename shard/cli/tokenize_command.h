#pragma once

#include <CLI/CLI.hpp>

namespace shardwise::cli {

// `shardwise tokenize --model DIR --text "..." [--no-special-tokens]` prints
// {"token_ids": [...]}; `shardwise detokenize --model DIR --ids 1,2,3 [--skip-special-tokens]`
// prints {"text": "..."}. DIR needs only tokenizer.json (or .gz) and tokenizer_config.json.
void add_tokenize_commands(CLI::App& app);

}  // namespace shardwise::cli
