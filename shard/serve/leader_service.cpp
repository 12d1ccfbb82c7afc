#include "shard/serve/leader_service.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "common/logging.h"

namespace shardwise {
namespace {

std::string read_optional_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse>* ShardService::Serve(
    grpc::CallbackServerContext*) {
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
                     v1::ModelCard card, const EngineLoop& loop)
    : coordinator_(std::move(coordinator)),
      stub_(v1::Registry::NewStub(grpc::CreateChannel(coordinator_, std::move(credentials)))),
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
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::DeregisterRequest request;
  request.set_replica_id(replica_id_);
  v1::DeregisterResponse response;
  grpc::Status status = stub_->Deregister(&context, request, &response);
  if (status.ok()) {
    log()->info("deregistered {} from {}", replica_id_, coordinator_);
  } else {
    log()->warn("deregister at {}: {} (the coordinator will expire the replica)", coordinator_,
                status.error_message());
  }
}

void Registrar::run() {
  auto wait = std::chrono::milliseconds(0);
  std::unique_lock lock(mutex_);
  while (!stop_cv_.wait_for(lock, wait, [&] { return stopping_; })) {
    lock.unlock();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (replica_id_.empty()) {
      v1::RegisterResponse response;
      grpc::Status status = stub_->Register(&context, card_, &response);
      if (status.ok()) {
        replica_id_ = response.replica_id();
        wait = std::chrono::milliseconds(std::max<uint32_t>(response.heartbeat_interval_ms(), 10));
        log()->info("registered {} at {} as {}", card_.name(), coordinator_, replica_id_);
      } else {
        log()->warn("register at {}: {}", coordinator_, status.error_message());
        wait = std::chrono::seconds(1);
      }
    } else {
      v1::HeartbeatRequest beat;
      beat.set_replica_id(replica_id_);
      EngineLoopStats stats = loop_.stats();
      beat.set_running(stats.running);
      beat.set_waiting(stats.waiting);
      beat.set_kv_cache_usage(stats.kv_cache_usage);
      v1::HeartbeatResponse response;
      grpc::Status status = stub_->Heartbeat(&context, beat, &response);
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) replica_id_.clear();
      if (!status.ok()) log()->warn("heartbeat to {}: {}", coordinator_, status.error_message());
    }
    lock.lock();
  }
}

}  // namespace shardwise
