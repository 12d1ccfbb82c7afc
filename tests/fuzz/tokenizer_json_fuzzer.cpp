// Tokenizer::from_json over arbitrary files: the input is tokenizer.json, then optionally a NUL
// and tokenizer_config.json, then a NUL and generation_config.json. A tokenizer that loads
// encodes and decodes a few texts (ids it produces must be inside its vocabulary) and renders
// its chat template, if it has one.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view rest = shardwise::fuzz::as_text(data, size);
  std::string_view parts[3];
  for (std::string_view& part : parts) {
    const std::size_t end = rest.find('\0');
    part = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  auto tokenizer = shardwise::Tokenizer::from_json(parts[0], parts[1], parts[2]);
  if (!tokenizer.ok()) return 0;
  const shardwise::Tokenizer& t = **tokenizer;
  for (const char* text : {"Hello, world!", "  \n\t x", "<s>ab</s>",
                           "\xC3\xA9t\xC3\xA9 \xE2\x96\x81", "123 4567", "\xFF invalid"}) {
    for (const bool special : {false, true}) {
      auto ids = t.encode(text, special);
      if (!ids.ok()) continue;
      for (const int32_t id : *ids) {
        if (id < 0 || static_cast<std::size_t>(id) >= t.vocab_size()) {
          shardwise::fuzz::fail("encode produced an id outside the vocabulary");
        }
      }
      (void)t.decode(*ids, false);
      (void)t.decode(*ids, true);
    }
  }
  std::vector<int32_t> every;
  for (std::size_t id = 0; id < std::min<std::size_t>(t.vocab_size(), 300); ++id) {
    every.push_back(static_cast<int32_t>(id));
  }
  (void)t.decode(every, false);
  if (t.has_chat_template()) {
    (void)t.apply_chat_template(nlohmann::json::array({{{"role", "user"}, {"content", "Hi"}}}),
                                true);
  }
  return 0;
}
