// vLLM's tokenizer endpoints: POST /tokenize ({"model", "prompt"} or {"model", "messages"},
// the chat template applied to messages) and POST /detokenize ({"model", "tokens"}), answered
// from the model's tokenizer in the registry without touching a replica.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"
#include "coordinator/registry.h"

namespace shardwise {

// {"count", "max_model_len", "tokens", "token_strs"}: token_strs (vocabulary strings) only with
// "return_token_strs": true, else null. add_special_tokens defaults to true for a prompt and to
// false for messages (the template writes them), add_generation_prompt to true.
StatusOr<nlohmann::json> tokenize_body(std::string_view body, const Registry& registry);
// {"prompt": the decoded text} (special tokens kept).
StatusOr<nlohmann::json> detokenize_body(std::string_view body, const Registry& registry);

}  // namespace shardwise
