// shardwise: the command-line tool. Subcommands run a model in this process (logits,
// generate) or use its tokenizer (tokenize, detokenize).
#include <CLI/CLI.hpp>

#include "common/logging.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/cli/batch_command.h"
#include "shard/cli/model_commands.h"
#include "shard/cli/tokenize_command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "shardwise: Llama-family inference on CPU and GPU clusters.\n"
      "Logs go to stderr; results (JSON) to stdout."};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand too
  int threads = 0;
  std::string log_level = "info";
  app.add_option("--threads", threads, "CPU threads for kernels and GEMMs (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.parse_complete_callback([&] {
    if (!shardwise::set_log_level(log_level)) {
      throw CLI::ValidationError("--log-level", "unknown level '" + log_level + "'");
    }
    shardwise::cpu::set_cpu_threads(threads);
  });

  shardwise::cli::add_model_commands(app);
  shardwise::cli::add_batch_command(app);
  shardwise::cli::add_tokenize_commands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
