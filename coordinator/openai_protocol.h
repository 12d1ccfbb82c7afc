// The OpenAI wire format, kept apart from the HTTP server so it can be tested alone:
// /v1/completions and /v1/chat/completions bodies -> v1::GenerateRequest, and
// v1::GenerateResponse messages -> OpenAI responses and stream chunks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "shardwise/v1/inference.pb.h"
#include "tokenizer/tokenizer.h"

namespace shardwise {

enum class ApiKind { kCompletion, kChat };

struct OpenAiRequest {
  ApiKind kind = ApiKind::kCompletion;
  v1::GenerateRequest request;
  bool stream = false;
  bool logprobs = false;  // the response carries log-probabilities
};

// INVALID_ARGUMENT naming the field for malformed JSON, missing fields, wrong types, n != 1.
StatusOr<OpenAiRequest> parse_openai_request(std::string_view body, ApiKind kind);

// Builds the response of one request from its stream of messages.
class OpenAiResponse {
 public:
  OpenAiResponse(const OpenAiRequest& request, const Tokenizer& tokenizer);

  // The stream chunk for `message` (also added to the full response).
  nlohmann::json chunk(const v1::GenerateResponse& message);
  // The non-streamed response, after every message went through chunk().
  nlohmann::json full() const;

 private:
  nlohmann::json logprobs_of(const v1::GenerateResponse& message) const;
  std::string token_text(int32_t id) const;

  ApiKind kind_;
  bool logprobs_;
  const Tokenizer& tokenizer_;
  std::string id_, model_;
  int64_t created_;
  bool first_chunk_ = true;
  std::string text_;
  std::string finish_reason_;
  nlohmann::json all_logprobs_ = nlohmann::json::array();
  nlohmann::json usage_;
};

// {"error": {"message", "type", "code"}} and the HTTP status for `status`.
nlohmann::json error_body(const Status& status);
nlohmann::json error_json(int http_status, const std::string& message, const std::string& code);
int http_status(const Status& status);

}  // namespace shardwise
