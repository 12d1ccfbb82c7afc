// Which fields of OpenAI's completions and chat request bodies shardwise honours, which it
// refuses, and which it accepts because they change nothing here: so that no field is ever
// silently ignored. docs/api.md has the same table for users.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "coordinator/openai_protocol.h"

namespace shardwise {

// INVALID_ARGUMENT naming the field: a field of neither OpenAI's schema nor the vLLM extensions
// shardwise honours, or a feature shardwise does not have (tools, structured output, audio,
// suffix, stored completions, ...) asked for.
Status check_request_fields(const nlohmann::json& body, ApiKind kind);

}  // namespace shardwise
