// The OpenAI wire format, kept apart from the HTTP server so it can be tested alone:
// /v1/completions and /v1/chat/completions bodies -> v1::GenerateRequest (the responses are
// built by openai_response.h), and the error shape.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "shardwise/v1/inference.pb.h"
#include "tokenizer/tokenizer.h"

namespace shardwise {

enum class ApiKind { kCompletion, kChat };

// n and best_of: at most this many choices (as coordinator/generation.h's kMaxChoices).
inline constexpr int kMaxOpenAiChoices = 16;

struct OpenAiRequest {
  ApiKind kind = ApiKind::kCompletion;
  v1::GenerateRequest request;  // sampling.n: the choices generated (best_of when given)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
  bool logprobs = false;       // the response carries log-probabilities
  int n = 1;                   // choices returned: with best_of, the n of highest cumulative
                               // log-probability among the best_of generated
  bool echo = false;           // completions: each choice's text starts with the prompt
};

// INVALID_ARGUMENT naming the field for malformed JSON, missing fields, wrong types, values out
// of range and fields shardwise does not support (openai_fields.h).
StatusOr<OpenAiRequest> parse_openai_request(std::string_view body, ApiKind kind);

// Chat messages (content a string or an array of text parts; role, name, tool_call_id) into
// `out`; INVALID_ARGUMENT naming the message for anything else (other part types, tool_calls).
Status parse_chat_messages(const nlohmann::json& messages, v1::ChatMessages& out);

// {"error": {"message", "type", "code"}} and the HTTP status for `status`.
nlohmann::json error_body(const Status& status);
nlohmann::json error_json(int http_status, const std::string& message, const std::string& code);
int http_status(const Status& status);

}  // namespace shardwise
