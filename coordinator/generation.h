// One generation request through the coordinator, shared by the gRPC and HTTP front ends:
// prepare() tokenizes (text, token ids or chat messages), fills in sampling defaults and
// validates; start() runs it asynchronously (GenerateCall, generate_call.h: routing, streaming,
// detokenizing, stop strings, retries) and run() is the same, blocking, for threads that may wait.
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
  v1::ShardSamplingParams sampling;
  std::vector<std::string> stop;
  v1::Priority priority = v1::PRIORITY_INTERACTIVE;
  uint32_t deadline_ms = 0;
  std::shared_ptr<const Tokenizer> tokenizer;
};

// Receives each response message; returning false means the client went away (the request
// is then cancelled at the shard).
using EmitFn = std::function<bool(const v1::GenerateResponse&)>;

class GenerateCall;
class ResponseSink;

class Generation {
 public:
  Generation(Registry& registry, Metrics& metrics) : registry_(registry), metrics_(metrics) {}

  StatusOr<PreparedRequest> prepare(const v1::GenerateRequest& request) const;
  // Starts `request`; its messages and outcome go to `sink`, from gRPC's threads.
  std::shared_ptr<GenerateCall> start(PreparedRequest request, ResponseSink& sink);
  // Emits messages of one or more tokens and a last one with finish_reason and usage; returns
  // OK or why the request failed (UNAVAILABLE when its replica died after tokens were sent).
  // Blocks the calling thread, which alone calls `emit`.
  Status run(const PreparedRequest& request, const EmitFn& emit);

 private:
  Registry& registry_;
  Metrics& metrics_;
};

}  // namespace shardwise
