#include "coordinator/grpc_services.h"

#include "coordinator/auth.h"
#include "coordinator/generate_call.h"

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
    h->set_device(device_name(r->card.device()));
    h->set_tp(r->card.tp());
    h->set_live(r->live);
    h->set_outstanding(r->outstanding);
  }
}

bool InferenceService::authorized(const grpc::ServerContextBase& context) const {
  auto it = context.client_metadata().find("authorization");
  const std::string_view header = it == context.client_metadata().end()
                                      ? ""
                                      : std::string_view(it->second.data(), it->second.size());
  return shardwise::authorized(api_key_, header);
}

namespace {

// One public Generate stream. At most one write is in flight; messages that arrive meanwhile
// are merged (enqueue()) and sent together when it completes, so a client that reads slowly
// gets fewer, larger messages instead of holding up the shard stream. Deletes itself in OnDone,
// which gRPC calls only after Finish, which comes only after the GenerateCall's on_done.
class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                              public ResponseSink {
 public:
  // A request that fails before it starts.
  explicit GenerateReactor(const grpc::Status& error) { Finish(error); }
  GenerateReactor(Generation& generation, PreparedRequest prepared) {
    call_ = generation.start(std::move(prepared), *this);
  }

  void on_message(v1::GenerateResponse&& message) override {
    {
      std::lock_guard lock(mutex_);
      if (client_gone_) return;
      enqueue(pending_, std::move(message));
      if (writing_) return;
      take_next();
    }
    StartWrite(&current_);
  }

  void on_done(const Status& status) override {
    {
      std::lock_guard lock(mutex_);
      status_ = to_grpc(status);
      call_done_ = true;
      if (writing_) return;  // OnWriteDone finishes
    }
    Finish(status_);
  }

  void OnWriteDone(bool ok) override {
    bool write = false, finish = false;
    {
      std::lock_guard lock(mutex_);
      writing_ = false;
      if (!ok) {
        client_gone_ = true;
        pending_.clear();
      }
      if (!pending_.empty()) {
        take_next();
        write = true;
      } else {
        finish = call_done_;
      }
    }
    if (!ok && call_) call_->cancel(Status(StatusCode::kCancelled, "the client went away"));
    if (write) StartWrite(&current_);
    if (finish) Finish(status_);
  }

  void OnCancel() override {
    if (call_) call_->cancel(Status(StatusCode::kCancelled, "the client went away"));
  }

  void OnDone() override { delete this; }

 private:
  // Moves the first pending message to current_ for StartWrite. Requires mutex_.
  void take_next() {
    current_ = std::move(pending_.front());
    pending_.pop_front();
    writing_ = true;
  }

  std::shared_ptr<GenerateCall> call_;
  std::mutex mutex_;
  std::deque<v1::GenerateResponse> pending_;  // guarded by mutex_
  v1::GenerateResponse current_;              // the write in flight, while writing_
  bool writing_ = false;                      // guarded by mutex_
  bool client_gone_ = false;                  // guarded by mutex_
  bool call_done_ = false;                    // guarded by mutex_
  grpc::Status status_;                       // set with call_done_
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  if (!authorized(*context)) {
    return new GenerateReactor(
        grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong API key"));
  }
  StatusOr<PreparedRequest> prepared = generation_.prepare(*request);
  if (!prepared.ok()) return new GenerateReactor(to_grpc(prepared.status()));
  return new GenerateReactor(generation_, std::move(prepared).value());
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

grpc::Status RegistryService::Deregister(grpc::ServerContext*, const v1::DeregisterRequest* request,
                                         v1::DeregisterResponse*) {
  return to_grpc(registry_.deregister(request->replica_id()));
}

}  // namespace shardwise
