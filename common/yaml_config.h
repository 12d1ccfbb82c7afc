// Reads a --config FILE (YAML) for CLI11, for the coordinator and the shard alike: every key is
// a command-line option's long name, so a file and a command line say the same things, and a
// flag given on the command line overrides the file. Nested maps join their keys with '-' and
// '_' reads as '-':
//
//   grpc: 0.0.0.0:50051
//   api_key: secret          # the same as api-key / --api-key
//   tls: {cert: server.pem, key: server.key}   # --tls-cert, --tls-key
//   models: [llama-3-8b]     # --models
//
// A key that names no option fails the parse with "unknown key NAME in FILE".
#pragma once

#include <CLI/CLI.hpp>

namespace shardwise {

class YamlConfig final : public CLI::Config {
 public:
  // `app`: whose options the keys must name; it outlives the parse.
  explicit YamlConfig(const CLI::App& app) : app_(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
  // The options' values as a flat YAML map that from_config reads back (--print-config).
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;

 private:
  const CLI::App& app_;
};

// Gives `app` --config FILE (read with YamlConfig; unknown keys are errors) and
// --print-config, which sets `print_config`: the caller then prints
// app.config_to_str(true, false) and exits.
void add_yaml_config(CLI::App& app, bool& print_config);

}  // namespace shardwise
