// The shard leader's network face: the Shard gRPC service (served from an EngineLoop) and the
// Registrar, which registers the replica's model card with the coordinator and heartbeats,
// registering again whenever the coordinator forgets it, and deregisters when the leader shuts
// down.
#pragma once

#include <grpcpp/security/credentials.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shard/serve/engine_loop.h"
#include "shard/serve/serve_stream.h"
#include "shardwise/v1/shard.grpc.pb.h"

namespace shardwise {

// Serve, the coordinator's many-request stream, is a callback method
// (shard/serve/serve_stream.h).
class ShardService final : public v1::Shard::CallbackService {
 public:
  explicit ShardService(EngineLoop& loop) : loop_(loop) {}

  grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse>* Serve(
      grpc::CallbackServerContext* context) override;

  // The leader is shutting down: Serve streams refuse new requests and end once their running
  // ones finish, so that Server::Shutdown does not wait for its deadline.
  void drain();

 private:
  EngineLoop& loop_;
  std::mutex mutex_;
  bool draining_ = false;                            // guarded by mutex_
  std::vector<std::weak_ptr<ServeStream>> streams_;  // guarded by mutex_
};

// Reads the tokenizer files a model card carries from a Hugging Face model folder.
StatusOr<v1::ModelCard> read_model_card(const std::string& model_dir);

class Registrar {
 public:
  // Starts registering `card` at `coordinator` (HOST:PORT) at once, retrying every second.
  // `credentials`: insecure, or TLS when the coordinator's gRPC listener uses it.
  Registrar(std::string coordinator, std::shared_ptr<grpc::ChannelCredentials> credentials,
            v1::ModelCard card, const EngineLoop& loop);
  // Stops heartbeating and deregisters, so the coordinator routes nothing more here at once
  // (requests streaming now still finish: the caller drains them after this).
  ~Registrar();

 private:
  void run();

  std::string coordinator_;
  std::unique_ptr<v1::Registry::Stub> stub_;
  v1::ModelCard card_;
  const EngineLoop& loop_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  // Empty while unregistered. Written by the registering thread; the destructor reads it after
  // joining that thread.
  std::string replica_id_;
  std::thread thread_;
};

}  // namespace shardwise
