// One line of a `shardwise batch` input file, in either of two formats:
//   shardwise's: {"id": ..., "token_ids": [...]} or {"id": ..., "prompt": "..."}, plus
//     sampling parameters by their OpenAI names;
//   OpenAI's batch format: {"custom_id": ..., "method": "POST", "url": "/v1/completions" or
//     "/v1/chat/completions", "body": {a request body}} (shard/cli/openai_batch.h).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shard/engine/request.h"
#include "shard/engine/sampler.h"

namespace shardwise::cli {

enum class BatchFormat { kShardwise, kOpenAi };
enum class BatchEndpoint { kCompletions, kChat };  // an OpenAI line's url

struct BatchItem {
  BatchFormat format = BatchFormat::kShardwise;
  nlohmann::json id;      // shardwise lines: echoed back as given (string or number)
  std::string custom_id;  // OpenAI lines
  BatchEndpoint endpoint = BatchEndpoint::kCompletions;
  std::string model;                  // OpenAI lines: the body's, echoed in the response
  std::vector<int32_t> token_ids;     // the prompt as ids, or
  std::optional<std::string> prompt;  // the prompt as text (needs the model's tokenizer), or
  nlohmann::json messages;            // chat: rendered by the model's chat template
  SamplingParams sampling;            // choice i samples with seed sampling.seed + i
  std::vector<std::string> stop;      // stop strings: the text is cut before the first match
  int n = 1;                          // OpenAI lines: choices
  // OpenAI lines: what is wrong with the request itself (its output line says so, with status
  // 400, and the other lines still run).
  Status error;
};

// What one choice of a line produced.
struct BatchResult {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprobs> logprobs;
  std::string text;  // decoded and cut at a stop string (when the model has a tokenizer)
  std::string finish_reason;
  std::string error;
};

// Parses one non-empty line. Errors in the line's shape (bad JSON, a missing or mistyped field,
// an unknown field) are INVALID_ARGUMENT. `default_seed` is used when the line gives no "seed",
// so a rerun of the same file samples the same tokens. Parameter ranges are checked by the
// engine.
StatusOr<BatchItem> parse_batch_line(std::string_view line, uint64_t default_seed);

// Reads the sampling parameters of a shardwise line or an OpenAI body by their OpenAI names
// (`stop`, a string or a list, into `stop`).
Status read_sampling(const nlohmann::json& line, SamplingParams& params,
                     std::vector<std::string>& stop);
// True for the fields read_sampling() reads.
bool is_sampling_field(std::string_view name);

}  // namespace shardwise::cli
