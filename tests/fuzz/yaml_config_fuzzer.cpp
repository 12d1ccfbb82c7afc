// The --config YAML (coordinator and shard) over arbitrary files: either options or a
// CLI::ConfigError (which the command line reports); anything else escaping would end the
// process. The keys are checked against an app with the option kinds the binaries have (text,
// numbers, a list, a flag, a nested name), so both known and unknown keys are reached.
#include <CLI/CLI.hpp>
#include <sstream>

#include "common/yaml_config.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

struct OptionsApp {
  CLI::App app{"fuzz"};
  std::string grpc, tls_cert;
  int heartbeat_ms = 0;
  std::vector<std::string> models;
  bool verbose = false;

  OptionsApp() {
    app.add_option("--grpc", grpc);
    app.add_option("--heartbeat-ms", heartbeat_ms);
    app.add_option("--models", models);
    app.add_flag("--verbose", verbose);
    app.add_option("--tls-cert", tls_cert);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::istringstream input{std::string(shardwise::fuzz::as_text(data, size))};
  static const OptionsApp options;
  try {
    (void)shardwise::YamlConfig(options.app).from_config(input);
  } catch (const CLI::ConfigError&) {
  }
  return 0;
}
