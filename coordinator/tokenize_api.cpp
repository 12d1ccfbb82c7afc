#include "coordinator/tokenize_api.h"

#include <set>

#include "coordinator/generation.h"
#include "coordinator/openai_protocol.h"

namespace shardwise {
namespace {

using json = nlohmann::json;

// The parsed body, its tokenizer, and a refusal of fields it does not know.
struct Parsed {
  json body;
  std::string model;
  std::shared_ptr<const Tokenizer> tokenizer;
};

StatusOr<Parsed> parse(std::string_view text, const Registry& registry,
                       const std::set<std::string>& fields) {
  Parsed out;
  out.body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (out.body.is_discarded()) return invalid_argument("the request body is not valid JSON");
  if (!out.body.is_object()) return invalid_argument("the request body must be a JSON object");
  for (const auto& [key, value] : out.body.items()) {
    if (!fields.contains(key)) return invalid_argument("unknown field '{}'", key);
  }
  auto model = out.body.find("model");
  if (model == out.body.end() || !model->is_string() || model->get<std::string>().empty()) {
    return invalid_argument("'model' is required");
  }
  out.model = model->get<std::string>();
  SW_ASSIGN_OR_RETURN(out.tokenizer, registry.tokenizer(out.model));
  return out;
}

StatusOr<bool> flag(const json& body, const char* name, bool default_value) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return default_value;
  if (!it->is_boolean()) return invalid_argument("'{}' must be true or false", name);
  return it->get<bool>();
}

}  // namespace

StatusOr<json> tokenize_body(std::string_view text, const Registry& registry) {
  SW_ASSIGN_OR_RETURN(Parsed p, parse(text, registry,
                                      {"model", "prompt", "messages", "add_special_tokens",
                                       "add_generation_prompt", "return_token_strs"}));
  const bool chat = p.body.contains("messages");
  if (chat == p.body.contains("prompt")) {
    return invalid_argument("give exactly one of 'prompt' and 'messages'");
  }
  SW_ASSIGN_OR_RETURN(bool add_special, flag(p.body, "add_special_tokens", !chat));
  SW_ASSIGN_OR_RETURN(bool add_generation_prompt, flag(p.body, "add_generation_prompt", true));
  SW_ASSIGN_OR_RETURN(bool token_strs, flag(p.body, "return_token_strs", false));
  std::string prompt;
  if (chat) {
    const json& messages = p.body["messages"];
    if (!messages.is_array() || messages.empty()) {
      return invalid_argument("'messages' must be a non-empty array");
    }
    v1::ChatMessages parsed;
    SW_RETURN_IF_ERROR(parse_chat_messages(messages, parsed));
    SW_ASSIGN_OR_RETURN(prompt, render_chat(parsed, *p.tokenizer, p.model, add_generation_prompt));
  } else {
    if (!p.body["prompt"].is_string()) return invalid_argument("'prompt' must be a string");
    prompt = p.body["prompt"].get<std::string>();
  }
  SW_ASSIGN_OR_RETURN(std::vector<int32_t> ids, p.tokenizer->encode(prompt, add_special));
  json strs = nullptr;
  if (token_strs) {
    strs = json::array();
    for (int32_t id : ids) {
      SW_ASSIGN_OR_RETURN(std::string token, p.tokenizer->id_to_token(id));
      strs.push_back(std::move(token));
    }
  }
  return json{{"count", ids.size()},
              {"max_model_len", registry.context_length(p.model)},
              {"tokens", ids},
              {"token_strs", strs}};
}

StatusOr<json> detokenize_body(std::string_view text, const Registry& registry) {
  SW_ASSIGN_OR_RETURN(Parsed p, parse(text, registry, {"model", "tokens"}));
  auto tokens = p.body.find("tokens");
  if (tokens == p.body.end() || !tokens->is_array()) {
    return invalid_argument("'tokens' must be an array of token ids");
  }
  std::vector<int32_t> ids;
  for (const json& id : *tokens) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= static_cast<int64_t>(p.tokenizer->vocab_size())) {
      return invalid_argument("'tokens' holds {}, not a token id of the vocabulary of {}",
                              id.dump(), p.tokenizer->vocab_size());
    }
    ids.push_back(id.get<int32_t>());
  }
  SW_ASSIGN_OR_RETURN(std::string prompt, p.tokenizer->decode(ids, /*skip_special_tokens=*/false));
  return json{{"prompt", prompt}};
}

}  // namespace shardwise
