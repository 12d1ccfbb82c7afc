// Whether the coordinator can serve (docs/operations.md): ready when it knows at least one
// model and every model it knows (each of --models, and each one that registered and has not
// left the registry) has a live replica. GET /health/ready and the gRPC health service report
// this; GET /health keeps its own, older answer (Registry::serving()).
#pragma once

#include <map>
#include <string>

#include "coordinator/registry.h"

namespace shardwise {

struct Readiness {
  bool ready = false;
  std::map<std::string, int> live_replicas;  // model -> its replicas in rotation
};

Readiness readiness(const Registry& registry);

}  // namespace shardwise
