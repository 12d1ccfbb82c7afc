// Keeps gRPC's standard health service (grpc.health.v1.Health, for grpcurl and Kubernetes gRPC
// probes) in step with the coordinator's readiness: the server ("") and shardwise.v1.Inference
// are SERVING while the coordinator is ready (coordinator/readiness.h), and each model's name
// while that model has a live replica. gRPC cannot forget a name, so a model that left the
// registry stays listed as NOT_SERVING; unknown names get NOT_FOUND.
#pragma once

#include <grpcpp/health_check_service_interface.h>

#include <map>
#include <string>

#include "coordinator/registry.h"

namespace shardwise {

class HealthPublisher {
 public:
  // `service`: the server's, from grpc::EnableDefaultHealthCheckService(true) before it was
  // built; null (no health service) makes every call a no-op.
  explicit HealthPublisher(grpc::HealthCheckServiceInterface* service) : service_(service) {}

  // Publishes what changed since the last call (Watch streams hear only changes).
  void update(const Registry& registry);
  // Draining: everything NOT_SERVING from now on.
  void shutdown();

 private:
  void publish(const std::string& name, bool serving);

  grpc::HealthCheckServiceInterface* service_;
  std::map<std::string, bool> published_;  // name -> serving, as last published
};

}  // namespace shardwise
