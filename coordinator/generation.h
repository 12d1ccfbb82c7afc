// One generation request through the coordinator, shared by the gRPC and HTTP front ends:
// prepare() tokenizes (text, token ids or chat messages), fills in sampling defaults (a fresh
// random seed per choice when none is given) and validates; start() runs it asynchronously
// (ChoicesCall, choices_call.h: one GenerateCall per choice, generate_call.h: routing,
// streaming, detokenizing, stop strings, retries) and run() is the same, blocking, for threads
// that may wait. embed() runs an embeddings request (EmbedCall, embed_call.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/metrics.h"
#include "coordinator/registry.h"

namespace shardwise {

struct PreparedRequest {
  std::string model;
  std::vector<int32_t> prompt_ids;
  v1::ShardSamplingParams sampling;  // choice i draws with seed seeds[i]
  std::vector<uint64_t> seeds;       // [n] one per choice: n = seeds.size(), 1..16
  std::vector<std::string> stop;
  v1::Priority priority = v1::PRIORITY_INTERACTIVE;
  uint32_t deadline_ms = 0;
  std::shared_ptr<const Tokenizer> tokenizer;
  // The text continues the prompt's (echo): its first token keeps a leading space that a text
  // decoded on its own would lose.
  bool decode_after_prompt = false;
  // Set by ChoicesCall for the GenerateCall of one choice:
  int choice = 0;                 // its messages' index
  std::string preferred_replica;  // where the request's other choices run (empty: anywhere)
};

// An embeddings request, tokenized and validated.
struct PreparedEmbedding {
  std::string model;
  std::vector<std::vector<int32_t>> inputs;  // [n_inputs][tokens]
  v1::ShardPooling pooling = v1::SHARD_POOLING_MEAN;
  v1::Priority priority = v1::PRIORITY_INTERACTIVE;
};

// Up to this many choices (n) per request, and inputs per embeddings request.
inline constexpr int kMaxChoices = 16;
inline constexpr int kMaxEmbeddingInputs = 2048;

// The chat messages through the model's chat template (tokenizer/chat_messages.h's rules):
// INVALID_ARGUMENT for a model without one, a role it cannot have, or a conversation the
// template refuses (its raise_exception message).
StatusOr<std::string> render_chat(const v1::ChatMessages& chat, const Tokenizer& tokenizer,
                                  const std::string& model, bool add_generation_prompt);

// Receives each response message; returning false means the client went away (the request
// is then cancelled at the shard).
using EmitFn = std::function<bool(const v1::GenerateResponse&)>;

class ChoicesCall;
class ResponseSink;

class Generation {
 public:
  Generation(Registry& registry, Metrics& metrics) : registry_(registry), metrics_(metrics) {}

  StatusOr<PreparedRequest> prepare(const v1::GenerateRequest& request) const;
  // Starts `request`; its messages and outcome go to `sink`, from gRPC's threads.
  std::shared_ptr<ChoicesCall> start(PreparedRequest request, ResponseSink& sink);
  // Emits messages of one or more tokens and a last one with finish_reason and usage; returns
  // OK or why the request failed (UNAVAILABLE when its replica died after tokens were sent).
  // Blocks the calling thread, which alone calls `emit`.
  Status run(const PreparedRequest& request, const EmitFn& emit);

  StatusOr<PreparedEmbedding> prepare(const v1::EmbedRequest& request) const;
  // Runs the inputs on one replica (another if it fails) and blocks until their embeddings,
  // L2-normalised, are back; `deadline` bounds the wait (DEADLINE_EXCEEDED).
  StatusOr<v1::EmbedResponse> embed(const PreparedEmbedding& request,
                                    std::chrono::milliseconds deadline);

 private:
  Registry& registry_;
  Metrics& metrics_;
};

}  // namespace shardwise
