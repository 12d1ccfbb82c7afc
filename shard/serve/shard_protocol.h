// Conversions between the engine's types and the internal Shard API's messages: the Serve
// stream's, and the engine metrics a heartbeat carries.
#pragma once

#include "common/status.h"
#include "shard/engine/request.h"
#include "shard/serve/engine_loop.h"
#include "shardwise/v1/shard.pb.h"

namespace shardwise {

Request to_request(const v1::ShardGenerateRequest& in);

// Adds the event to `update`: its token, with its log-probabilities when it has them, the
// prompt's log-probabilities (`prompt` is the request's) and an embedding.
void add_event(const StreamEvent& event, const std::vector<int32_t>& prompt,
               v1::ShardRequestUpdate& update);

// What a request's last event means when it is not a normal finish: CANCELLED for kCancelled,
// INTERNAL for kError, OK otherwise.
Status event_failure(const StreamEvent& event);

// The counters and histograms of `stats` as HeartbeatRequest.engine carries them.
v1::EngineMetrics to_engine_metrics(const EngineLoopStats& stats);

}  // namespace shardwise
