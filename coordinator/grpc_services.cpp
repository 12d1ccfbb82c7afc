#include "coordinator/grpc_services.h"

#include "coordinator/auth.h"

namespace shardwise {

grpc::Status to_grpc(const Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

void fill_health(const Registry& registry, v1::HealthResponse& response) {
  response.set_serving(registry.serving());
  for (const auto& r : registry.replicas()) {
    v1::ReplicaHealth* h = response.add_replicas();
    h->set_model(r->card.name());
    h->set_address(r->card.address());
    h->set_device(r->card.device());
    h->set_tp(r->card.tp());
    h->set_live(r->live);
    h->set_outstanding(r->outstanding);
  }
}

bool InferenceService::authorized(const grpc::ServerContext& context) const {
  auto it = context.client_metadata().find("authorization");
  const std::string_view header = it == context.client_metadata().end()
                                      ? ""
                                      : std::string_view(it->second.data(), it->second.size());
  return shardwise::authorized(api_key_, header);
}

grpc::Status InferenceService::Generate(grpc::ServerContext* context,
                                        const v1::GenerateRequest* request,
                                        grpc::ServerWriter<v1::GenerateResponse>* writer) {
  if (!authorized(*context)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong API key");
  }
  StatusOr<PreparedRequest> prepared = generation_.prepare(*request);
  if (!prepared.ok()) return to_grpc(prepared.status());
  return to_grpc(generation_.run(*prepared, [&](const v1::GenerateResponse& response) {
    return !context->IsCancelled() && writer->Write(response);
  }));
}

grpc::Status InferenceService::ListModels(grpc::ServerContext* context,
                                          const v1::ListModelsRequest*,
                                          v1::ListModelsResponse* response) {
  if (!authorized(*context)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong API key");
  }
  for (const std::string& name : registry_.models()) {
    v1::ModelInfo* info = response->add_models();
    info->set_name(name);
    info->set_context_length(registry_.context_length(name));
    int live = 0;
    for (const auto& r : registry_.replicas()) live += r->card.name() == name && r->live;
    info->set_live_replicas(live);
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::Health(grpc::ServerContext*, const v1::HealthRequest*,
                                      v1::HealthResponse* response) {
  fill_health(registry_, *response);
  return grpc::Status::OK;
}

grpc::Status RegistryService::Register(grpc::ServerContext*, const v1::ModelCard* card,
                                       v1::RegisterResponse* response) {
  StatusOr<std::string> id = registry_.register_replica(*card);
  if (!id.ok()) return to_grpc(id.status());
  response->set_replica_id(*id);
  response->set_heartbeat_interval_ms(
      static_cast<uint32_t>(registry_.heartbeat_interval().count()));
  return grpc::Status::OK;
}

grpc::Status RegistryService::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                                        v1::HeartbeatResponse*) {
  return to_grpc(registry_.heartbeat(*request));
}

grpc::Status RegistryService::Deregister(grpc::ServerContext*,
                                         const v1::DeregisterRequest* request,
                                         v1::DeregisterResponse*) {
  return to_grpc(registry_.deregister(request->replica_id()));
}

}  // namespace shardwise
