// OpenAI's batch file format for `shardwise batch`: input lines {"custom_id", "method": "POST",
// "url": "/v1/completions" | "/v1/chat/completions", "body"}, output lines {"id", "custom_id",
// "response": {"status_code", "request_id", "body"}, "error"} whose body is the completion (or
// chat.completion) object the HTTP API would answer.
#pragma once

#include <nlohmann/json.hpp>
#include <span>

#include "shard/cli/batch_requests.h"
#include "tokenizer/tokenizer.h"

namespace shardwise::cli {

// A malformed envelope (custom_id, method, url, body) is an error for the whole file; what is
// wrong inside the body is the item's `error`, answered in its output line.
StatusOr<BatchItem> parse_openai_batch_line(const nlohmann::json& line, uint64_t default_seed);

// The output line of `item`, whose choices produced `choices` from a prompt of
// `prompt_tokens` tokens; `line` (1-based) numbers its ids.
nlohmann::json openai_output_line(const BatchItem& item, std::span<const BatchResult> choices,
                                  int prompt_tokens, const Tokenizer* tokenizer, int line);

}  // namespace shardwise::cli
