// What an OpenAI-compatible server said to one request, read chunk by chunk (SSE) or from one
// body: tokens, finish reason, usage, or the error. A server's malformed output is an error or
// an unknown count, never a crash.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/loadgen/client.h"

namespace shardwise::loadgen {

// "CODE: message" of an OpenAI error body {"error": {"message", "code"}}; the code is
// "HTTP <status>" when the body has none.
std::string openai_error_text(const nlohmann::json& body, int http_status);

struct OpenAiOutcome {
  std::string finish_reason;                       // "" until a chunk carries one
  int prompt_tokens = -1, completion_tokens = -1;  // the usage; -1: none sent
  std::string error;                               // from an error event or body
  bool malformed = false;                          // a chunk that is not a JSON object

  // Reads one chunk (or the whole body); returns whether it carried tokens (text, or no
  // finish reason yet: a token may decode to no text).
  bool read(const nlohmann::json& chunk, Protocol protocol);
};

}  // namespace shardwise::loadgen
