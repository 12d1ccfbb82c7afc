#include "coordinator/readiness.h"

#include <algorithm>

namespace shardwise {

Readiness readiness(const Registry& registry) {
  Readiness out;
  for (const std::string& model : registry.models()) out.live_replicas[model] = 0;
  for (const auto& replica : registry.replicas()) {
    if (replica->live) ++out.live_replicas[replica->card.name()];
  }
  out.ready =
      !out.live_replicas.empty() && std::all_of(out.live_replicas.begin(), out.live_replicas.end(),
                                                [](const auto& entry) { return entry.second > 0; });
  return out;
}

}  // namespace shardwise
