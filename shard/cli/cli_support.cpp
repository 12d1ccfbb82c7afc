#include "shard/cli/cli_support.h"

#include <unistd.h>

#include <filesystem>

namespace shardwise::cli {

std::string default_model_dir() {
  const std::filesystem::path built_from = SHARDWISE_DEFAULT_MODEL_DIR;
  std::error_code error;
  if (std::filesystem::is_directory(built_from, error)) return built_from.string();
  const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return built_from.string();
  const std::filesystem::path installed =
      executable.parent_path().parent_path() / "share/shardwise/models" / built_from.filename();
  return std::filesystem::is_directory(installed, error) ? installed.string() : built_from.string();
}

CLI::Validator existing_model_dir() {
  return CLI::Validator(
      [](std::string& dir) -> std::string {
        std::error_code error;
        const auto status = std::filesystem::status(dir, error);
        if (!std::filesystem::exists(status)) return "model folder " + dir + " does not exist";
        if (!std::filesystem::is_directory(status))
          return "model folder " + dir + " is not a folder";
        return "";
      },
      "DIR");
}

}  // namespace shardwise::cli
