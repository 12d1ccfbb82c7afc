// What a client hands the engine (a prompt, sampling parameters, a stream callback) and what
// the engine streams back: one event per generated token, the last one carrying the finish
// reason. Every request gets exactly one event with a finish reason. An embedding request
// (pooling set) generates nothing: its one event carries the pooled hidden state.
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

// What an embedding request returns: a pool of the final (normed) hidden states of its prompt.
enum class Pooling {
  kNone,  // a generation request
  kMean,  // the mean over every prompt position
  kLast,  // the last prompt position's
};

struct StreamEvent {
  RequestId request_id = 0;
  std::optional<int32_t> token;               // the new token; none on a cancel or error event
  std::optional<TokenLogprobs> logprobs;      // with the token, when the request asked for them
  std::optional<FinishReason> finish_reason;  // set on the request's last event only
  std::string error;                          // with kError: the failed status
  // On the first token's event, when sampling.prompt_logprobs asked: [n_prompt - 1], the
  // log-probability of prompt token i + 1 at position i.
  std::vector<TokenLogprobs> prompt_logprobs;
  std::vector<float>
      embedding;  // [hidden_size] an embedding request's result (kStop), unnormalised
};

// Called on the engine's thread inside step(); may call the engine's add_request and cancel.
using StreamCallback = std::function<void(const StreamEvent& event)>;

struct Request {
  std::vector<int32_t> prompt_ids;  // e.g. {1, 403, 407}; each in [0, vocab_size)
  SamplingParams sampling;          // of a generation request; max_tokens is ignored with pooling
  StreamCallback on_event;
  Pooling pooling = Pooling::kNone;  // set: an embedding request
};

}  // namespace shardwise
