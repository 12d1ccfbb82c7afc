#include "shard/serve/leader_service.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "common/cluster_auth.h"
#include "common/logging.h"
#include "common/secret.h"
#include "shard/serve/shard_protocol.h"

namespace shardwise {
namespace {

std::string read_optional_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A channel that tries a coordinator that went away again every second or two, where gRPC's
// own backoff would wait up to two minutes: a restarted coordinator has its replicas back at once.
std::shared_ptr<grpc::Channel> registry_channel(
    const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(address, std::move(credentials), args);
}

// The Serve call of a caller that is not of the cluster: it ends at once.
class RefusedStream final
    : public grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

Status check_caller(const grpc::CallbackServerContext& context, const std::string& token) {
  std::optional<std::string_view> presented;
  auto it = context.client_metadata().find(std::string(kClusterTokenMetadata));
  if (it != context.client_metadata().end())
    presented.emplace(it->second.data(), it->second.size());
  return check_cluster_caller(token, presented, context.peer());
}

grpc::Status to_grpc(const Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

}  // namespace

ShardService::ShardService(EngineLoop& loop, std::string cluster_token,
                           const std::string& instance_secret)
    : loop_(loop),
      cluster_token_(std::move(cluster_token)),
      instance_digest_(sha256_hex(instance_secret)) {}

grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse>* ShardService::Serve(
    grpc::CallbackServerContext* context) {
  if (Status caller = check_caller(*context, cluster_token_); !caller.ok()) {
    log()->warn("Serve refused: {}", caller.message());
    return new RefusedStream(to_grpc(caller));
  }
  auto [stream, reactor] = ServeStream::open(loop_);
  bool draining = false;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(streams_, [](const auto& s) { return s.expired(); });
    streams_.push_back(stream);
    draining = draining_;
  }
  if (draining) stream->drain();
  return reactor;
}

grpc::ServerUnaryReactor* ShardService::Identify(grpc::CallbackServerContext* context,
                                                 const v1::IdentifyRequest*,
                                                 v1::IdentifyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Status caller = check_caller(*context, cluster_token_);
  if (caller.ok()) response->set_instance_digest(instance_digest_);
  reactor->Finish(to_grpc(caller));
  return reactor;
}

void ShardService::drain() {
  std::vector<std::weak_ptr<ServeStream>> streams;
  {
    std::lock_guard lock(mutex_);
    draining_ = true;
    streams = streams_;
  }
  for (const auto& weak : streams) {
    if (auto stream = weak.lock()) stream->drain();
  }
}

StatusOr<v1::ModelCard> read_model_card(const std::string& model_dir) {
  v1::ModelCard card;
  card.set_tokenizer_json(read_optional_file(model_dir + "/tokenizer.json"));
  if (card.tokenizer_json().empty()) {
    return not_found("{}/tokenizer.json: missing or empty (the coordinator needs it)", model_dir);
  }
  card.set_tokenizer_config_json(read_optional_file(model_dir + "/tokenizer_config.json"));
  card.set_generation_config_json(read_optional_file(model_dir + "/generation_config.json"));
  return card;
}

Registrar::Registrar(std::string coordinator, std::shared_ptr<grpc::ChannelCredentials> credentials,
                     std::string cluster_token, v1::ModelCard card, const EngineLoop& loop)
    : coordinator_(std::move(coordinator)),
      cluster_token_(std::move(cluster_token)),
      stub_(v1::Registry::NewStub(registry_channel(coordinator_, std::move(credentials)))),
      card_(std::move(card)),
      loop_(loop),
      thread_([this] { run(); }) {}

Registrar::~Registrar() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_one();
  thread_.join();
  if (replica_id_.empty()) return;
  v1::DeregisterRequest request;
  request.set_replica_id(replica_id_);
  request.set_registration_secret(registration_secret_);
  v1::DeregisterResponse response;
  grpc::Status status = stub_->Deregister(context().get(), request, &response);
  if (status.ok()) {
    log()->info("deregistered {} from {}", replica_id_, coordinator_);
  } else {
    log()->warn("deregister at {}: {} (the coordinator will expire the replica)", coordinator_,
                status.error_message());
  }
}

std::unique_ptr<grpc::ClientContext> Registrar::context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (!cluster_token_.empty()) {
    context->AddMetadata(std::string(kClusterTokenMetadata), cluster_token_);
  }
  return context;
}

Registrar::Clock::time_point Registrar::register_once(Clock::time_point now) {
  v1::RegisterResponse response;
  grpc::Status status = stub_->Register(context().get(), card_, &response);
  if (!status.ok()) {
    log()->warn("register at {}: {}", coordinator_, status.error_message());
    return now + std::chrono::seconds(1);
  }
  replica_id_ = response.replica_id();
  registration_secret_ = response.registration_secret();
  interval_ = std::chrono::milliseconds(std::max<uint32_t>(response.heartbeat_interval_ms(), 10));
  log()->info("registered {} at {} as {}", card_.name(), coordinator_, replica_id_);
  return now + interval_;
}

Registrar::Clock::time_point Registrar::heartbeat_once(Clock::time_point now) {
  v1::HeartbeatRequest beat;
  beat.set_replica_id(replica_id_);
  beat.set_registration_secret(registration_secret_);
  EngineLoopStats stats = loop_.stats();
  beat.set_running(stats.running);
  beat.set_waiting(stats.waiting);
  beat.set_kv_cache_usage(stats.kv_cache_usage);
  *beat.mutable_engine() = to_engine_metrics(stats);
  v1::HeartbeatResponse response;
  grpc::Status status = stub_->Heartbeat(context().get(), beat, &response);
  if (status.ok()) return now + interval_;
  log()->warn("heartbeat to {}: {}", coordinator_, status.error_message());
  if (status.error_code() != grpc::StatusCode::NOT_FOUND) return now + interval_;
  // The coordinator forgot this replica (it restarted, or expired it): register at once, so
  // that it learns the model again within its registration window.
  replica_id_.clear();
  registration_secret_.clear();
  return Clock::now();
}

void Registrar::run() {
  Clock::time_point next = Clock::now();
  std::unique_lock lock(mutex_);
  while (!stop_cv_.wait_until(lock, next, [&] { return stopping_; })) {
    lock.unlock();
    const Clock::time_point now = Clock::now();
    next = replica_id_.empty() ? register_once(now) : heartbeat_once(now);
    lock.lock();
  }
}

}  // namespace shardwise
