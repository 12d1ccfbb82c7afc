// What `shardwise generate` and `shardwise-shard --ids` print, in one place so they agree:
// the stop tokens of a request and the {"token_ids", "text"} JSON.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/status.h"
#include "models/model_config.h"
#include "tokenizer/tokenizer.h"

namespace shardwise::cli {

// The model folder's tokenizer, or null when it has none (a weights-only checkpoint).
StatusOr<std::unique_ptr<Tokenizer>> load_tokenizer_if_present(const std::filesystem::path& dir);

// The EOS ids of config.json followed by the tokenizer's (tokenizer_config, generation_config).
std::vector<int32_t> default_stop_token_ids(const LlamaConfig& config, const Tokenizer* tokenizer);

// {"token_ids": [...]} plus "text" (special tokens skipped) when there is a tokenizer.
StatusOr<nlohmann::json> generation_json(const std::vector<int32_t>& token_ids,
                                         const Tokenizer* tokenizer);

}  // namespace shardwise::cli
