// The coordinator's --config YAML over arbitrary files: either options or a CLI::ConfigError
// (which the command line reports); anything else escaping would end the process.
#include <sstream>

#include "coordinator/yaml_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::istringstream input{std::string(shardwise::fuzz::as_text(data, size))};
  try {
    (void)shardwise::YamlConfig().from_config(input);
  } catch (const CLI::ConfigError&) {
  }
  return 0;
}
