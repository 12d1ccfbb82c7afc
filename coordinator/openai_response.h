// Builds the OpenAI response of one request from its stream of v1::GenerateResponse messages:
// the stream chunks (choices interleaved, each naming its index; the usage in a last chunk with
// no choices when stream_options.include_usage asked) and the non-streamed body (choices in
// order; with best_of, the n of highest cumulative log-probability).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/generation.h"
#include "coordinator/openai_protocol.h"

namespace shardwise {

// "fp_" + the coordinator's build (its git commit): OpenAI's system_fingerprint.
const std::string& system_fingerprint();

class OpenAiResponse {
 public:
  OpenAiResponse(const OpenAiRequest& request, const PreparedRequest& prepared);

  // The stream chunks for `message` (none for the message of prompt log-probabilities, which
  // go out with each choice's first chunk); every message also builds the full response.
  std::vector<nlohmann::json> chunks(const v1::GenerateResponse& message);
  // After the last message: the usage chunk, or null when the request did not ask for it.
  nlohmann::json usage_chunk() const;
  // The non-streamed response, after every message went through chunks().
  nlohmann::json full() const;

 private:
  struct Choice {
    std::string text;
    std::string finish_reason;
    nlohmann::json logprobs = nlohmann::json::array();  // one entry per token (echo: prompt's too)
    double cumulative_logprob = 0;                      // of the generated tokens
    int completion_tokens = 0;
    bool started = false;  // its first chunk went out
  };

  // Starts choice `index`: its echoed prompt and role.
  nlohmann::json start_choice(Choice& choice);
  nlohmann::json token_logprob(const v1::GenerateResponse& message, int offset) const;
  nlohmann::json logprobs_json(const nlohmann::json& entries) const;
  nlohmann::json envelope(const char* object) const;
  nlohmann::json usage() const;
  std::string token_text(int32_t id) const;

  const OpenAiRequest& request_;
  const PreparedRequest& prepared_;
  std::string id_;
  int64_t created_;
  std::vector<Choice> choices_;                               // [generated choices]
  nlohmann::json prompt_logprobs_ = nlohmann::json::array();  // echo: one entry per prompt token
  std::string prompt_text_;                                   // echo: the prompt
};

}  // namespace shardwise
