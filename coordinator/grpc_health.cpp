#include "coordinator/grpc_health.h"

#include "coordinator/readiness.h"

namespace shardwise {

void HealthPublisher::publish(const std::string& name, bool serving) {
  auto [it, added] = published_.try_emplace(name, serving);
  if (!added && it->second == serving) return;
  it->second = serving;
  service_->SetServingStatus(name, serving);
}

void HealthPublisher::update(const Registry& registry) {
  if (service_ == nullptr) return;
  const Readiness now = readiness(registry);
  publish("", now.ready);
  publish("shardwise.v1.Inference", now.ready);
  for (auto& [name, serving] : published_) {
    if (!name.empty() && name != "shardwise.v1.Inference" && !now.live_replicas.contains(name)) {
      if (serving) service_->SetServingStatus(name, false);
      serving = false;
    }
  }
  for (const auto& [model, live] : now.live_replicas) publish(model, live > 0);
}

void HealthPublisher::shutdown() {
  if (service_ != nullptr) service_->Shutdown();
}

}  // namespace shardwise
