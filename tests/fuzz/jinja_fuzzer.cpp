// A chat template over arbitrary source: compiled, then rendered for a conversation with tools,
// as the coordinator renders a registered model's template for each chat request.
#include <nlohmann/json.hpp>

#include "tests/fuzz/fuzz_input.h"
#include "tokenizer/chat_template.h"

namespace {

const nlohmann::json& conversation() {
  static const nlohmann::json messages = nlohmann::json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi <think>there</think>"},
    {"role": "assistant", "content": "Hello", "tool_calls": [
      {"type": "function", "function": {"name": "f", "arguments": {"x": 1, "y": [true, null]}}}]},
    {"role": "tool", "content": "{\"ok\": 1.5}"},
    {"role": "user", "content": "caf\u00e9 \ud83d\ude00"}])");
  return messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  auto compiled = shardwise::tokenizer::ChatTemplate::compile(
      std::string(shardwise::fuzz::as_text(data, size)));
  if (!compiled.ok()) return 0;
  static const nlohmann::json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  static const nlohmann::json extra = nlohmann::json::parse(R"({
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "enable_thinking": false})");
  (void)(*compiled)->render(conversation(), true, special, extra);
  (void)(*compiled)->render(nlohmann::json::array(), false, special, nlohmann::json::object());
  return 0;
}
