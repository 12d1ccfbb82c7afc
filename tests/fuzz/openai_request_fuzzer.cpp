// The OpenAI request JSON of /v1/completions and /v1/chat/completions over arbitrary bodies,
// then, for a body that parses, Generation::prepare against a registry holding stories260K's
// tokenizer and chat template: range checks, tokenization and template rendering, everything a
// request goes through before it is routed to a shard.
#include "coordinator/generation.h"
#include "coordinator/openai_protocol.h"
#include "tests/coordinator/test_cards.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

shardwise::Generation& generation() {
  static shardwise::Registry registry(std::chrono::hours(1), 3, {});
  static shardwise::Metrics metrics;
  static const bool registered = [] {
    // At an address never dialled: prepare() does not route.
    shardwise::v1::ModelCard card = shardwise::test_card("127.0.0.1:1", "cpu", 1);
    card.set_tokenizer_config_json(
        R"({"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{% for m in messages %})"
        R"({{ m.role ~ ': ' ~ m.content | trim }}{% endfor %}"})");
    return registry.register_replica(card).ok();
  }();
  if (!registered) shardwise::fuzz::fail("the fixture model card does not register");
  static shardwise::Generation generation(registry, metrics);
  return generation;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  for (const auto kind : {shardwise::ApiKind::kCompletion, shardwise::ApiKind::kChat}) {
    auto request = shardwise::parse_openai_request(shardwise::fuzz::as_text(data, size), kind);
    if (!request.ok()) continue;
    request->request.set_model("stories");
    (void)generation().prepare(request->request);
  }
  return 0;
}
