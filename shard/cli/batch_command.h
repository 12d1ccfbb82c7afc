#pragma once

#include <CLI/CLI.hpp>

namespace shardwise::cli {

// `shardwise batch --model DIR --input requests.jsonl --output results.jsonl`: offline batch
// inference. Every request of the input (one JSON object a line) is submitted to one engine
// at once; results are written one a line in input order. Progress and a summary go to stderr.
void add_batch_command(CLI::App& app);

}  // namespace shardwise::cli
