// Conversions between the engine's types and the internal Shard API's messages of the Serve
// stream.
#pragma once

#include "common/status.h"
#include "shard/engine/request.h"
#include "shardwise/v1/shard.pb.h"

namespace shardwise {

Request to_request(const v1::ShardGenerateRequest& in);

// Appends the event's token, with its log-probabilities when it has them.
void add_token(const StreamEvent& event,
               google::protobuf::RepeatedPtrField<v1::ShardToken>& tokens);

// What a request's last event means when it is not a normal finish: CANCELLED for kCancelled,
// INTERNAL for kError, OK otherwise.
Status event_failure(const StreamEvent& event);

}  // namespace shardwise
