// parse_llama_config over arbitrary text; what it accepts must hold its documented invariants.
#include "models/model_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  auto config = shardwise::parse_llama_config(shardwise::fuzz::as_text(data, size), "fuzz");
  if (!config.ok()) return 0;
  if (config->num_attention_heads % config->num_key_value_heads != 0 || config->head_dim % 2 != 0 ||
      !(config->rms_norm_eps > 0 && config->rms_norm_eps < 1) || !(config->rope.theta > 0)) {
    shardwise::fuzz::fail("an accepted config.json breaks an invariant");
  }
  return 0;
}
