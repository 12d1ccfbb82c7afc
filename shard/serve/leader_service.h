// The shard leader's network face: the Shard gRPC service (served from an EngineLoop) and the
// Registrar, which registers the replica's model card with the coordinator and heartbeats,
// registering again whenever the coordinator forgets it, and deregisters when the leader shuts
// down. Both sides of the cluster present or check the cluster token (common/cluster_auth.h).
#pragma once

#include <grpcpp/security/credentials.h>

#include <atomic>
#include <chrono>
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
// (shard/serve/serve_stream.h). Callers must be of the cluster: with `cluster_token`, those that
// present it; without, those on this host.
class ShardService final : public v1::Shard::CallbackService {
 public:
  // `instance_secret`: this process's (ModelCard.instance_secret); Identify answers its digest.
  ShardService(EngineLoop& loop, std::string cluster_token, const std::string& instance_secret);

  grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse>* Serve(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Identify(grpc::CallbackServerContext* context,
                                     const v1::IdentifyRequest* request,
                                     v1::IdentifyResponse* response) override;

  // The leader is shutting down: Serve streams refuse new requests and end once their running
  // ones finish, so that Server::Shutdown does not wait for its deadline.
  void drain();

 private:
  EngineLoop& loop_;
  const std::string cluster_token_;
  const std::string instance_digest_;
  std::mutex mutex_;
  bool draining_ = false;                            // guarded by mutex_
  std::vector<std::weak_ptr<ServeStream>> streams_;  // guarded by mutex_
};

// Reads the tokenizer files a model card carries from a Hugging Face model folder.
StatusOr<v1::ModelCard> read_model_card(const std::string& model_dir);

// Runs on a thread of its own that the engine never blocks (it reads the loop's load from
// atomics), and keeps a steady beat: each heartbeat is due one interval after the previous one
// was sent, however long that one took.
class Registrar {
 public:
  // Starts registering `card` at `coordinator` (HOST:PORT) at once, retrying every second.
  // `credentials`: insecure, or TLS when the coordinator's gRPC listener uses it;
  // `cluster_token` (may be empty) goes with every call.
  Registrar(std::string coordinator, std::shared_ptr<grpc::ChannelCredentials> credentials,
            std::string cluster_token, v1::ModelCard card, const EngineLoop& loop);
  // Stops heartbeating and deregisters, so the coordinator routes nothing more here at once
  // (requests streaming now still finish: the caller drains them after this).
  ~Registrar();

 private:
  using Clock = std::chrono::steady_clock;

  void run();
  // One call each; they return when the next call is due.
  Clock::time_point register_once(Clock::time_point now);
  Clock::time_point heartbeat_once(Clock::time_point now);
  // A context with the cluster token and a deadline.
  std::unique_ptr<grpc::ClientContext> context() const;

  std::string coordinator_;
  std::string cluster_token_;
  std::unique_ptr<v1::Registry::Stub> stub_;
  v1::ModelCard card_;
  const EngineLoop& loop_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  // Empty while unregistered. Written by the registering thread; the destructor reads them
  // after joining that thread.
  std::string replica_id_;
  std::string registration_secret_;
  std::chrono::milliseconds interval_{1000};
  std::thread thread_;
};

}  // namespace shardwise
