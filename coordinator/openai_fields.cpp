#include "coordinator/openai_fields.h"

#include <algorithm>
#include <string_view>

namespace shardwise {
namespace {

using json = nlohmann::json;

// Honoured by openai_protocol.cpp (or, for the last group, changing nothing here: `user` and
// `safety_identifier` identify the end user, `prompt_cache_key` groups requests for a prefix
// cache that is automatic here, `parallel_tool_calls` governs tools, which are never called).
constexpr std::string_view kCommon[] = {
    "model", "stream", "stream_options", "n", "temperature", "top_p", "seed", "stop", "max_tokens",
    "frequency_penalty", "presence_penalty", "logit_bias", "logprobs",
    // vLLM's extensions
    "top_k", "min_p", "repetition_penalty", "ignore_eos", "stop_token_ids", "max_completion_tokens",
    // no effect here
    "user", "safety_identifier", "prompt_cache_key"};
constexpr std::string_view kCompletion[] = {"prompt", "best_of", "echo", "suffix"};
constexpr std::string_view kChat[] = {"messages",        "top_logprobs",
                                      "response_format", "tools",
                                      "tool_choice",     "parallel_tool_calls",
                                      "functions",       "function_call",
                                      "store",           "metadata",
                                      "modalities",      "audio",
                                      "prediction",      "reasoning_effort",
                                      "service_tier",    "web_search_options",
                                      "verbosity"};

template <std::size_t N>
bool listed(const std::string_view (&names)[N], const std::string& name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

bool empty_value(const json& value) {
  return value.is_null() ||
         ((value.is_array() || value.is_object() || value.is_string()) && value.empty());
}

// A feature that is refused unless the field is absent or says "none of it".
Status refuse_unless_empty(const json& body, const char* name, const char* what) {
  auto it = body.find(name);
  if (it == body.end() || empty_value(*it)) return ok_status();
  return invalid_argument("'{}' is not supported: shardwise has no {}", name, what);
}

Status check_chat_fields(const json& body) {
  SW_RETURN_IF_ERROR(refuse_unless_empty(body, "tools", "tool calling"));
  SW_RETURN_IF_ERROR(refuse_unless_empty(body, "functions", "function calling"));
  SW_RETURN_IF_ERROR(refuse_unless_empty(body, "audio", "audio output"));
  SW_RETURN_IF_ERROR(refuse_unless_empty(body, "prediction", "predicted outputs"));
  SW_RETURN_IF_ERROR(refuse_unless_empty(body, "reasoning_effort", "reasoning models"));
  SW_RETURN_IF_ERROR(refuse_unless_empty(body, "web_search_options", "web search"));
  SW_RETURN_IF_ERROR(refuse_unless_empty(body, "verbosity", "verbosity setting"));
  for (const char* name : {"tool_choice", "function_call"}) {
    auto it = body.find(name);
    if (it != body.end() && !it->is_null() && *it != "none") {
      return invalid_argument("'{}' is not supported: shardwise has no tool calling", name);
    }
  }
  if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || !it->contains("type") || (*it)["type"] != "text") {
      return invalid_argument(
          "'response_format' {} is not supported: only {{\"type\": \"text\"}} (no JSON mode or "
          "schema-guided output)",
          it->dump());
    }
  }
  if (auto it = body.find("store"); it != body.end() && !it->is_null() && *it != false) {
    return invalid_argument("'store' is not supported: shardwise stores no completions");
  }
  if (auto it = body.find("metadata"); it != body.end() && !it->is_null() && !it->is_object()) {
    return invalid_argument("'metadata' must be an object");
  }
  if (auto it = body.find("modalities"); it != body.end() && !it->is_null()) {
    if (*it != json::array({"text"})) {
      return invalid_argument("'modalities' {} is not supported: only [\"text\"]", it->dump());
    }
  }
  if (auto it = body.find("service_tier"); it != body.end() && !it->is_null()) {
    if (*it != "auto" && *it != "default") {
      return invalid_argument("'service_tier' {} is not supported: there is one tier, \"default\"",
                              it->dump());
    }
  }
  return ok_status();
}

}  // namespace

Status check_request_fields(const json& body, ApiKind kind) {
  for (const auto& [name, value] : body.items()) {
    const bool known =
        listed(kCommon, name) ||
        (kind == ApiKind::kCompletion ? listed(kCompletion, name) : listed(kChat, name));
    if (!known) {
      return invalid_argument("unknown field '{}' for {}", name,
                              kind == ApiKind::kChat ? "/v1/chat/completions" : "/v1/completions");
    }
  }
  if (kind == ApiKind::kCompletion) {
    return refuse_unless_empty(body, "suffix", "insertion (suffix) completions");
  }
  return check_chat_fields(body);
}

}  // namespace shardwise
