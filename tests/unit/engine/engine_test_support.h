// Runs requests through an Engine to the end and collects each one's stream.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "shard/engine/engine.h"

namespace shardwise::testing {

struct Completion {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprobs> logprobs;
  std::optional<FinishReason> finish_reason;
  int final_events = 0;
  int events_after_final = 0;
};

// A callback appending to `out`.
inline StreamCallback collect_into(Completion& out) {
  return [&out](const StreamEvent& event) {
    if (out.final_events > 0) ++out.events_after_final;
    if (event.token) out.tokens.push_back(*event.token);
    if (event.logprobs) out.logprobs.push_back(*event.logprobs);
    if (event.finish_reason) {
      ++out.final_events;
      out.finish_reason = event.finish_reason;
    }
  };
}

// Submits every request at once, steps until all finish; each completion in request order.
inline std::vector<Completion> run_all(Engine& engine, std::vector<Request> requests) {
  std::vector<Completion> completions(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i].on_event = collect_into(completions[i]);
    auto id = engine.add_request(std::move(requests[i]));
    EXPECT_TRUE(id.ok()) << id.status().to_string();
  }
  while (engine.has_unfinished()) {
    const Status status = engine.step();
    EXPECT_TRUE(status.ok()) << status.to_string();
    if (!status.ok()) break;
  }
  return completions;
}

inline Request greedy_request(std::vector<int32_t> prompt, int max_tokens) {
  Request request;
  request.prompt_ids = std::move(prompt);
  request.sampling.max_tokens = max_tokens;
  return request;
}

}  // namespace shardwise::testing
