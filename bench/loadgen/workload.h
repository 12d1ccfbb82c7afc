// The requests a run sends, as a seeded function of their index: request(i) is the same in
// every run with the same options, whatever the concurrency or the order of completions.
//   random         random token ids, input and output lengths fixed or drawn from a range
//   shared-prefix  N system prompts x M questions: request i pairs prefix i mod N with
//                  question (i / N) mod M, so concurrent requests share prefixes (prefix cache)
//   jsonl          one request per line, cycled: {"prompt": "text" | [ids]} or
//                  {"messages": [{"role", "content"}]}, optionally "max_tokens"
// Chat endpoints take no token ids: there the random and shared-prefix prompts are random
// words (input length = words), the prefix a system message and the question a user message.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/request.h"
#include "common/status.h"

namespace shardwise::loadgen {

// "128" or "64-256" (inclusive).
struct LengthRange {
  int min = 128, max = 128;
};
StatusOr<LengthRange> parse_length_range(std::string_view text);

// What the protocol accepts as a prompt.
enum class PromptForms {
  kAll,         // gRPC: ids, text or chat
  kIdsOrText,   // /v1/completions
  kTextOrChat,  // /v1/chat/completions (text becomes one user message)
};

struct WorkloadOptions {
  std::string kind = "random";    // random, shared-prefix, jsonl
  LengthRange input, output;      // input: the question's length for shared-prefix
  int vocab_size = 512;           // random ids come from [3, vocab_size): past BOS/EOS/UNK
  int num_prefixes = 4;           // shared-prefix: N system prompts ...
  int questions_per_prefix = 16;  // ... x M questions
  int prefix_len = 256;           // tokens (or words) per system prompt
  std::string jsonl_path;
  bool ignore_eos = true;
  uint64_t seed = 0;
  PromptForms forms = PromptForms::kAll;
};

class Workload {
 public:
  // Reads and checks the JSONL file; refuses prompt forms the protocol does not take.
  static StatusOr<Workload> create(const WorkloadOptions& options);

  RequestSpec request(int64_t index) const;
  // Warm-up requests come from a stream of their own, so that the measured requests are the
  // same with or without warm-up.
  RequestSpec warmup_request(int64_t index) const;

 private:
  explicit Workload(WorkloadOptions options) : options_(std::move(options)) {}
  RequestSpec make(uint64_t stream, int64_t index) const;
  RequestSpec random_request(uint64_t seed) const;
  RequestSpec shared_prefix_request(uint64_t stream, int64_t index) const;

  WorkloadOptions options_;
  std::vector<RequestSpec> lines_;  // jsonl
};

}  // namespace shardwise::loadgen
