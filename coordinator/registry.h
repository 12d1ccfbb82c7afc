// The coordinator's view of every deployment: replicas per model, each with its model card,
// tokenizer, gRPC stub and load. Replicas join by registering, stay by heartbeating (or by
// streaming: traffic on their Serve stream counts as a sign of life), and leave rotation when
// they fall silent, deregister or their stream breaks; they rejoin by registering again. A
// replica out of rotation stays listed (/health, /metrics) for a grace period, then it and its
// payloads are freed. Registration is validated and bounded (RegistrationLimits), and a model's
// card is fixed by its live replicas. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "coordinator/replica_session.h"
#include "coordinator/shard_dialer.h"
#include "shardwise/v1/inference.pb.h"
#include "shardwise/v1/shard.grpc.pb.h"
#include "tokenizer/tokenizer.h"

namespace shardwise {

// "cpu" or "cuda": how the public API, logs and metrics name a replica's device.
std::string device_name(v1::Device device);

struct Replica {
  std::string id;      // e.g. "stories260K-3f9c01d2a4b5e6f7": unguessable, but public
  v1::ModelCard card;  // without the tokenizer files (they live in `tokenizer`) and secrets
  std::string tokenizer_digest;  // SHA-256 of the tokenizer files: the model card's identity
  std::shared_ptr<const Tokenizer> tokenizer;  // shared by the replicas with the same files
  std::unique_ptr<v1::Shard::Stub> stub;
  std::shared_ptr<const ShardDialer> dialer;
  std::string registration_secret;  // proves a Heartbeat or Deregister comes from the holder
  std::string instance_secret;      // the leader process's (ModelCard.instance_secret)
  std::atomic<int> outstanding{0};  // requests routed here and not finished
  std::atomic<bool> live{true};
  std::atomic<int> running{0};            // from the last heartbeat
  std::atomic<int> waiting{0};            // from the last heartbeat
  std::atomic<float> kv_cache_usage{0};   // from the last heartbeat
  std::atomic<int64_t> left_rotation{0};  // steady-clock ns when `live` turned false
  // The last sign of life, a heartbeat or a message on the Serve stream (steady-clock ns).
  // Shared with the stream, which may outlive the replica.
  std::shared_ptr<std::atomic<int64_t>> last_seen = std::make_shared<std::atomic<int64_t>>(0);

  ~Replica();
  // The stream that carries this replica's requests, opened again if it broke.
  std::shared_ptr<ReplicaSession> session();
  // Breaks the stream, ending its requests, so that none waits on a replica that stopped
  // heartbeating or was replaced.
  void close_session();
  // Breaks the stream and lets go of it (the registry's teardown).
  void end_session();
  // The engine's counters from the last heartbeat (empty before the first, or from leaders
  // older than EngineMetrics).
  v1::EngineMetrics engine_metrics() const;
  void set_engine_metrics(const v1::EngineMetrics& metrics);
  // Takes the replica out of rotation; returns false when it was out already.
  bool leave_rotation();

 private:
  std::mutex session_mutex_;
  std::shared_ptr<ReplicaSession> session_;  // guarded by session_mutex_
  mutable std::mutex engine_metrics_mutex_;
  v1::EngineMetrics engine_metrics_;  // guarded by engine_metrics_mutex_
};

struct RouterOptions {
  // Requests waiting beyond the live replicas' capacity; more -> RESOURCE_EXHAUSTED.
  int max_queued = 256;
  // Interactive requests prefer cuda replicas and batch requests cpu ones, until the preferred
  // side is saturated (outstanding >= capacity on every replica); then they spill over.
  bool route_by_priority = true;
};

// What one registration may carry and how many the registry holds, so that no caller can make
// the coordinator hold unbounded memory. Replicas out of rotation count until they are freed,
// but give way (oldest first) to a new registration that would not fit.
struct RegistrationLimits {
  size_t max_tokenizer_bytes = 32 << 20;         // tokenizer.json (Llama 3's: 9 MB)
  size_t max_tokenizer_config_bytes = 4 << 20;   // tokenizer_config.json (chat template)
  size_t max_generation_config_bytes = 1 << 20;  // generation_config.json
  int max_replicas = 256;                        // in all
  int max_replicas_per_model = 64;
  int max_models = 32;
  int min_context_length = 16;  // a window too small to hold a prompt and an answer
};

struct RegistryOptions {
  std::chrono::milliseconds heartbeat_interval{1000};
  int missed_heartbeats = 3;  // silent intervals that take a replica out of rotation
  // How long a replica out of rotation stays listed before it and its payloads are freed.
  std::chrono::milliseconds grace{60000};
  // After start-up, a request for a model no replica has registered (yet) is UNAVAILABLE with
  // a retry hint, not NOT_FOUND: a restarted coordinator waits for its replicas to re-register.
  std::chrono::milliseconds registration_window{0};
  RegistrationLimits limits;
  RouterOptions router;
};

// What Register returns: the replica's public id and the secret its holder proves itself with.
struct Registration {
  std::string replica_id;
  std::string secret;
};

class Registry {
 public:
  // `dialer`: how to reach the shards (default: no token, plain channels).
  explicit Registry(RegistryOptions options, std::shared_ptr<const ShardDialer> dialer = nullptr);
  Registry(std::chrono::milliseconds heartbeat_interval, int missed_heartbeats,
           RouterOptions router);
  // Ends every replica's stream and waits (up to 10 s) for all sessions to go before the
  // replicas' channels do (ReplicaSession::wait_until_none_left says why).
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Models that must be served: each is listed (with no replicas) until one registers, and
  // serving() stays false until each has a live replica. They are never freed.
  void expect_models(const std::vector<std::string>& models);
  // Validates the card, parses its tokenizer (or shares the one of identical files) and adds
  // the replica. A replica out of rotation at the same address is replaced; a live one only
  // when the caller proves it is the process listening there (Shard.Identify). Errors:
  // INVALID_ARGUMENT (a malformed or oversized card), FAILED_PRECONDITION (the card differs
  // from the model's live replicas'), ALREADY_EXISTS / UNAVAILABLE (a live replica holds the
  // address and the caller is not, or cannot be shown to be, its listener), RESOURCE_EXHAUSTED.
  StatusOr<Registration> register_replica(const v1::ModelCard& card);
  // NOT_FOUND for an unknown or dead replica (it must register again), PERMISSION_DENIED when
  // the beat's registration secret is not the replica's.
  Status heartbeat(const v1::HeartbeatRequest& beat);
  // Takes the replica out of rotation without cancelling its streams (a leader shutting down
  // drains them). NOT_FOUND for an unknown id, PERMISSION_DENIED for a wrong secret.
  Status deregister(const std::string& replica_id, const std::string& secret);
  // Takes replicas silent for missed_heartbeats intervals out of rotation, and frees those out
  // of rotation for longer than the grace period (and models left with no replica).
  void expire(std::chrono::steady_clock::time_point now);
  void mark_dead(Replica& replica, const std::string& why);

  // Least outstanding work among live replicas of `model` not in `exclude`: NOT_FOUND for an
  // unknown model (UNAVAILABLE during the registration window), UNAVAILABLE when none is live,
  // RESOURCE_EXHAUSTED when the queue is full. The replica named `preferred_id` wins while it is
  // live and not excluded (the choices of one request go where the first went, to share its
  // prompt's cache blocks).
  StatusOr<std::shared_ptr<Replica>> pick(const std::string& model, v1::Priority priority,
                                          const std::set<std::string>& exclude,
                                          const std::string& preferred_id = "") const;
  // A tokenizer of `model` (NOT_FOUND, or UNAVAILABLE during the registration window, when no
  // replica registered it).
  StatusOr<std::shared_ptr<const Tokenizer>> tokenizer(const std::string& model) const;
  int context_length(const std::string& model) const;
  // When a client refused with UNAVAILABLE should try again: the rest of the registration
  // window, or one second.
  std::chrono::seconds retry_after() const;
  // Unix seconds when `model` was first expected or registered (OpenAI's `created`) since it
  // was last freed; 0 if unknown.
  int64_t created(const std::string& model) const;

  std::vector<std::shared_ptr<Replica>> replicas() const;
  std::vector<std::string> models() const;
  // True when at least one model is known and every known model has a live replica.
  bool serving() const;
  std::chrono::milliseconds heartbeat_interval() const { return options_.heartbeat_interval; }
  // Distinct tokenizers held (replicas with identical tokenizer files share one).
  size_t tokenizers_held() const;

 private:
  struct Admission;
  struct ModelEntry {
    std::vector<std::shared_ptr<Replica>> replicas;
    bool expected = false;  // named by expect_models: kept with no replicas
    int64_t created = 0;    // Unix seconds: first expected or registered
  };

  // Whether `card` may join now, and what must go to make room. Requires mutex_.
  Status admit_locked(const v1::ModelCard& card, const std::string& digest, bool proven_listener,
                      Admission& admission) const;
  // Requires mutex_.
  void remove_locked(const std::shared_ptr<Replica>& replica);
  Status unknown_model(const std::string& model) const;
  // A live replica of `model`, else the last registered; null when it has none. Requires mutex_.
  const Replica* representative_locked(const std::string& model) const;
  StatusOr<std::shared_ptr<const Tokenizer>> shared_tokenizer(const v1::ModelCard& card,
                                                              const std::string& digest);

  const RegistryOptions options_;
  const std::shared_ptr<const ShardDialer> dialer_;
  const std::chrono::steady_clock::time_point started_;
  mutable std::mutex mutex_;
  std::map<std::string, ModelEntry> by_model_;
  std::unordered_map<std::string, std::shared_ptr<Replica>> by_id_;
  std::map<std::string, std::weak_ptr<const Tokenizer>> tokenizers_;  // by digest
  mutable size_t next_pick_ = 0;                                      // guarded by mutex_
};

}  // namespace shardwise
