// What a client hands the engine (a prompt, sampling parameters, a stream callback) and what
// the engine streams back: one event per generated token, the last one carrying the finish
// reason. Every request gets exactly one event with a finish reason.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shard/engine/sampler.h"

namespace shardwise {

using RequestId = uint64_t;

enum class FinishReason {
  kStop,       // a stop token or EOS was generated (it is the last streamed token)
  kLength,     // max_tokens were generated
  kCancelled,  // cancel() was called
  kError,      // the forward pass failed; the event's error says why
};

// "stop", "length", "cancelled", "error" (the OpenAI spelling for the first two).
std::string_view finish_reason_name(FinishReason reason);

struct StreamEvent {
  RequestId request_id = 0;
  std::optional<int32_t> token;               // the new token; none on a cancel or error event
  std::optional<TokenLogprobs> logprobs;      // with the token, when the request asked for them
  std::optional<FinishReason> finish_reason;  // set on the request's last event only
  std::string error;                          // with kError: the failed status
};

// Called on the engine's thread inside step(); may call the engine's add_request and cancel.
using StreamCallback = std::function<void(const StreamEvent& event)>;

struct Request {
  std::vector<int32_t> prompt_ids;  // e.g. {1, 403, 407}; each in [0, vocab_size)
  SamplingParams sampling;
  StreamCallback on_event;
};

}  // namespace shardwise
