// The coordinator's view of every deployment: replicas per model, each with its model card,
// tokenizer, gRPC stub and load. Replicas join by registering, stay by heartbeating, and leave
// rotation when they miss heartbeats or their stream breaks; they rejoin by registering again.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/replica_session.h"
#include "shardwise/v1/inference.pb.h"
#include "shardwise/v1/shard.grpc.pb.h"
#include "tokenizer/tokenizer.h"

namespace shardwise {

// "cpu" or "cuda": how the public API, logs and metrics name a replica's device.
std::string device_name(v1::Device device);

struct Replica {
  std::string id;      // e.g. "stories260K-3"
  v1::ModelCard card;  // without the tokenizer files (they live in `tokenizer`)
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<v1::Shard::Stub> stub;
  std::atomic<int> outstanding{0};  // requests routed here and not finished
  std::atomic<bool> live{true};
  std::atomic<int> running{0};                      // from the last heartbeat
  std::atomic<int> waiting{0};                      // from the last heartbeat
  std::atomic<float> kv_cache_usage{0};             // from the last heartbeat
  std::chrono::steady_clock::time_point last_seen;  // guarded by the registry's mutex

  ~Replica();
  // The stream that carries this replica's requests, opened again if it broke.
  std::shared_ptr<ReplicaSession> session();
  // Breaks the stream, ending its requests, so that none waits on a replica that stopped
  // heartbeating or was replaced.
  void close_session();

 private:
  std::mutex session_mutex_;
  std::shared_ptr<ReplicaSession> session_;  // guarded by session_mutex_
};

struct RouterOptions {
  // Requests waiting beyond the live replicas' capacity; more -> RESOURCE_EXHAUSTED.
  int max_queued = 256;
  // Interactive requests prefer cuda replicas and batch requests cpu ones, until the preferred
  // side is saturated (outstanding >= capacity on every replica); then they spill over.
  bool route_by_priority = true;
};

class Registry {
 public:
  Registry(std::chrono::milliseconds heartbeat_interval, int missed_heartbeats,
           RouterOptions router);

  // Models that must be served: each is listed (with no replicas) until one registers, and
  // serving() stays false until each has a live replica.
  void expect_models(const std::vector<std::string>& models);
  // Parses the card's tokenizer (INVALID_ARGUMENT if it cannot) and adds the replica,
  // replacing one registered earlier at the same address. Returns the replica id.
  StatusOr<std::string> register_replica(const v1::ModelCard& card);
  // NOT_FOUND for an unknown or dead replica (it must register again).
  Status heartbeat(const v1::HeartbeatRequest& beat);
  // Takes the replica out of rotation without cancelling its streams (a leader shutting down
  // drains them). NOT_FOUND for an unknown id.
  Status deregister(const std::string& replica_id);
  // Takes replicas silent for missed_heartbeats intervals out of rotation.
  void expire(std::chrono::steady_clock::time_point now);
  void mark_dead(Replica& replica, const std::string& why);

  // Least outstanding work among live replicas of `model` not in `exclude`: NOT_FOUND for an
  // unknown model, UNAVAILABLE when none is live, RESOURCE_EXHAUSTED when the queue is full.
  StatusOr<std::shared_ptr<Replica>> pick(const std::string& model, v1::Priority priority,
                                          const std::set<std::string>& exclude) const;
  // A tokenizer of `model` (NOT_FOUND when no replica ever registered it).
  StatusOr<std::shared_ptr<const Tokenizer>> tokenizer(const std::string& model) const;
  int context_length(const std::string& model) const;

  std::vector<std::shared_ptr<Replica>> replicas() const;
  std::vector<std::string> models() const;
  // True when at least one model is known and every known model has a live replica.
  bool serving() const;
  std::chrono::milliseconds heartbeat_interval() const { return heartbeat_interval_; }

 private:
  const std::chrono::milliseconds heartbeat_interval_;
  const int missed_heartbeats_;
  const RouterOptions router_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::shared_ptr<Replica>>> by_model_;
  int next_id_ = 1;
  mutable size_t next_pick_ = 0;  // guarded by mutex_
};

}  // namespace shardwise
