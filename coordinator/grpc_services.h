// The coordinator's gRPC services: the public Inference API (shardwise.v1.Inference) and the
// Registry that shard leaders register and heartbeat with.
#pragma once

#include <string>

#include "coordinator/generation.h"
#include "shardwise/v1/inference.grpc.pb.h"
#include "shardwise/v1/shard.grpc.pb.h"

namespace shardwise {

// Generate is a callback method (GenerateReactor, grpc_services.cpp): tokens are written from
// the gRPC thread that read them from the shard, with no hand-off to a handler thread.
class InferenceService final
    : public v1::Inference::WithCallbackMethod_Generate<v1::Inference::Service> {
 public:
  InferenceService(Generation& generation, Registry& registry, std::string api_key)
      : generation_(generation), registry_(registry), api_key_(std::move(api_key)) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context, const v1::HealthRequest* request,
                      v1::HealthResponse* response) override;
  // Blocks one of gRPC's sync threads for the request (embeddings stream nothing).
  grpc::Status Embed(grpc::ServerContext* context, const v1::EmbedRequest* request,
                     v1::EmbedResponse* response) override;

 private:
  bool authorized(const grpc::ServerContextBase& context) const;

  Generation& generation_;
  Registry& registry_;
  std::string api_key_;
};

// Every call must come from the cluster (common/cluster_auth.h): with `cluster_token`, callers
// that present it; without, callers on this host.
class RegistryService final : public v1::Registry::Service {
 public:
  RegistryService(Registry& registry, std::string cluster_token)
      : registry_(registry), cluster_token_(std::move(cluster_token)) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::ModelCard* card,
                        v1::RegisterResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status Deregister(grpc::ServerContext* context, const v1::DeregisterRequest* request,
                          v1::DeregisterResponse* response) override;

 private:
  Registry& registry_;
  const std::string cluster_token_;
};

// Fills `response` from the registry (also used by GET /health).
void fill_health(const Registry& registry, v1::HealthResponse& response);

grpc::Status to_grpc(const Status& status);

}  // namespace shardwise
