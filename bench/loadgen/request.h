// What the load generator sends (RequestSpec) and what it measured for it (RequestResult).
// Times are seconds on the steady clock, counted from the run's zero.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace shardwise::loadgen {

using Clock = std::chrono::steady_clock;

struct ChatTurn {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// One request of a workload. Exactly one prompt form is set: token ids, text, or chat messages.
struct RequestSpec {
  int64_t index = 0;                // position in the workload's seeded sequence
  std::vector<int32_t> prompt_ids;  // e.g. [1, 403, 407]
  std::string prompt_text;
  std::vector<ChatTurn> messages;
  int max_tokens = 16;
  bool ignore_eos = true;  // so that max_tokens is the exact output length
};

struct RequestResult {
  int64_t index = 0;
  double scheduled_s = -1;  // open loop: the planned arrival; -1 in a closed loop
  double start_s = 0;       // when it was sent
  double ttft_s = -1;       // time to the first message carrying tokens; -1: none came
  double e2e_s = -1;        // time to the end (success or failure)
  // Gaps between successive messages that carry tokens (a message may carry several tokens
  // when the server batched them; `messages` counts them).
  std::vector<double> itl_s;
  int messages = 0;
  int input_tokens = 0;       // the server's usage.prompt_tokens, else the prompt's own length
  int output_tokens = 0;      // the server's usage.completion_tokens, else the tokens received
  std::string finish_reason;  // "stop", "length"
  std::string error;          // empty when the request finished; else "CODE: message"

  bool ok() const { return error.empty(); }
  // Time per output token after the first: (e2e - ttft) / (output_tokens - 1); -1 when the
  // request failed or produced fewer than two tokens.
  double tpot_s() const;
};

// Fills a RequestResult as a request's messages arrive; shared by every protocol's client.
class ResultRecorder {
 public:
  ResultRecorder(const RequestSpec& spec, Clock::time_point zero);

  void sent();
  // A message carrying `tokens` tokens (HTTP chunks count 1) arrived.
  void received(int tokens);
  // The request ended well; usage values < 0 mean the server sent none.
  RequestResult finish(const std::string& finish_reason, int prompt_tokens, int completion_tokens);
  // The request failed: `error` is "CODE: message".
  RequestResult fail(std::string error);

 private:
  double now() const;
  RequestResult take();

  Clock::time_point zero_;
  RequestResult result_;
  double last_message_s_ = -1;
  int received_tokens_ = 0;
  bool have_usage_ = false;
};

}  // namespace shardwise::loadgen
