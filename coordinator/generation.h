// One generation request through the coordinator, shared by the gRPC and HTTP front ends:
// prepare() tokenizes (text, token ids or chat messages), fills in sampling defaults and
// validates; run() routes to a replica, streams its tokens back detokenized with stop strings
// applied, and retries on another replica when one fails before sending a token.
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

class Generation {
 public:
  Generation(Registry& registry, Metrics& metrics) : registry_(registry), metrics_(metrics) {}

  StatusOr<PreparedRequest> prepare(const v1::GenerateRequest& request) const;
  // Emits one message per token and a last one with finish_reason and usage; returns OK or
  // why the request failed (UNAVAILABLE when its replica died after tokens were sent).
  Status run(const PreparedRequest& request, const EmitFn& emit);

 private:
  struct Attempt;
  Status stream_from(Replica& replica, const PreparedRequest& request, Attempt& attempt,
                     const EmitFn& emit);

  Registry& registry_;
  Metrics& metrics_;
};

}  // namespace shardwise
