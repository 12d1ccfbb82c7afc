// shardwise: the command-line tool. Subcommands run a model in this process (logits,
// generate, batch) or use its tokenizer (tokenize, detokenize).
#include <CLI/CLI.hpp>

#include "common/command_line.h"
#include "common/logging.h"
#include "common/version.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/cli/batch_command.h"
#include "shard/cli/model_commands.h"
#include "shard/cli/tokenize_command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "shardwise: Llama-family inference on CPU and GPU clusters.\n"
      "Logs go to stderr; results (JSON) to stdout.",
      "shardwise"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand too
  shardwise::add_version_flag(app, "shardwise");
  int threads = 0;
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--threads", threads, "CPU threads for kernels and GEMMs (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.add_option("--log-format", log_format,
                 "text, or json: one object per line (time, level, rank, replica, message)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.parse_complete_callback([&] {
    if (!shardwise::set_log_level(log_level)) {
      throw CLI::ValidationError("--log-level", "unknown level '" + log_level + "'");
    }
    shardwise::set_log_format(log_format);
    shardwise::cpu::set_cpu_threads(threads);
  });

  shardwise::cli::add_model_commands(app);
  shardwise::cli::add_batch_command(app);
  shardwise::cli::add_tokenize_commands(app);
  if (auto exit_code = shardwise::parse_command_line(app, argc, argv)) return *exit_code;
  return shardwise::kExitOk;
}
