// OpenAI chat messages -> the messages a chat template renders, one set of rules for every
// front end (the coordinator's HTTP and gRPC APIs, `shardwise batch`).
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace shardwise {

// Each message's content becomes a string (an array of text parts is joined with newlines, as
// vLLM does); roles are system, developer (rendered as system: OpenAI's newer name for it),
// user, assistant and tool; `name` and `tool_call_id` are kept for templates that use them.
// INVALID_ARGUMENT naming the message for other roles, other part types (images, audio,
// files), tool_calls, or fields of the wrong type.
StatusOr<nlohmann::json> template_messages(const nlohmann::json& messages);

}  // namespace shardwise
