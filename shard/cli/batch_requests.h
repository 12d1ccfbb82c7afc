// One line of a `shardwise batch` input file: {"id": ..., "token_ids": [...]} or
// {"id": ..., "prompt": "..."}, plus sampling parameters by their OpenAI names.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shard/engine/sampler.h"

namespace shardwise::cli {

struct BatchItem {
  nlohmann::json id;                  // echoed back as given (string or number)
  std::vector<int32_t> token_ids;     // the prompt as ids, or
  std::optional<std::string> prompt;  // the prompt as text (needs the model's tokenizer)
  SamplingParams sampling;
};

// Parses one non-empty line. Errors (bad JSON, a missing or mistyped field, an unknown field)
// are INVALID_ARGUMENT. `default_seed` is used when the line gives no "seed", so a rerun of
// the same file samples the same tokens. Parameter ranges are checked by the engine.
StatusOr<BatchItem> parse_batch_line(std::string_view line, uint64_t default_seed);

}  // namespace shardwise::cli
