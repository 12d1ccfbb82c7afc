// An embeddings request through the coordinator: every input is one Shard.Serve request with a
// pooling mode, all on one replica; the pooled vectors come back in one update each and are
// L2-normalised here. Nothing reaches the client before every input is done, so a replica that
// fails is always retried on another one.
#pragma once

#include <chrono>

#include "coordinator/generation.h"

namespace shardwise {

// Blocks the calling thread until the embeddings are back, the request fails, or `deadline`
// passes (DEADLINE_EXCEEDED; 0: no deadline).
StatusOr<v1::EmbedResponse> run_embedding(Registry& registry, Metrics& metrics,
                                          const PreparedEmbedding& request,
                                          std::chrono::milliseconds deadline);

}  // namespace shardwise
