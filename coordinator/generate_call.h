// One generation request in flight, as an asynchronous state machine driven by gRPC's callback
// threads: it routes to a replica, runs there over the replica's shared stream (ReplicaSession),
// detokenizes and applies stop strings on the thread that received each update, and retries on
// another replica when one fails before sending a token. No thread waits on it, so a token costs no
// context switch here. Both front ends use it: gRPC through a server write reactor, HTTP
// through Generation::run's blocking wrapper.
#pragma once

#include <grpcpp/alarm.h>

#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "coordinator/generation.h"
#include "coordinator/replica_session.h"

namespace shardwise {

// Where a request's output goes. Calls come from gRPC threads, one at a time, never after
// on_done; they must not block (a slow client is the sink's to buffer, see enqueue()).
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void on_message(v1::GenerateResponse&& message) = 0;
  // The last call: OK after the message with finish_reason and usage, or why the request failed.
  virtual void on_done(const Status& status) = 0;
};

// Appends `message` to `queue`, merging plain token messages into a plain last one: the batching
// inference.proto documents (a token with log-probabilities, and the last message, travel alone).
void enqueue(std::deque<v1::GenerateResponse>& queue, v1::GenerateResponse&& message);

class GenerateCall : public ShardRequestListener,
                     public std::enable_shared_from_this<GenerateCall> {
 public:
  // Starts `request`; `sink` must outlive the call's on_done.
  static std::shared_ptr<GenerateCall> start(Registry& registry, Metrics& metrics,
                                             PreparedRequest request, ResponseSink& sink);
  GenerateCall(Registry& registry, Metrics& metrics, PreparedRequest request, ResponseSink& sink);

  // Ends the request with `why` (e.g. the client went away, or its deadline passed): cancels
  // it at the replica. Any thread; a no-op once the request has ended.
  void cancel(const Status& why);

  // ShardRequestListener, for the attempt running at a replica.
  bool on_update(const v1::ShardRequestUpdate& update) override;
  void on_end(const Status& status) override;

 private:
  // What one attempt at one replica has done: the tokens already streamed (none, if it may be
  // retried).
  struct Attempt;

  void next_attempt();
  Status attempt_status(const Status& status);
  void finish(const Status& status);

  Registry& registry_;
  Metrics& metrics_;
  const PreparedRequest request_;
  v1::ShardGenerateRequest shard_request_;
  ResponseSink& sink_;
  const std::chrono::steady_clock::time_point start_;
  grpc::Alarm deadline_;
  std::set<std::string> tried_;
  Status last_failure_;  // of the last replica tried, for "every replica failed"
  // Touched only by the attempt's listener calls, which the session makes one at a time (and
  // the next attempt starts from the last of them).
  std::shared_ptr<Replica> replica_;
  std::unique_ptr<Attempt> attempt_;

  std::mutex mutex_;
  Status cancelled_;  // guarded by mutex_: set by cancel()
  // guarded by mutex_: the attempt in flight, for cancel(); ended_attempts_ counts on_end calls
  // so that an attempt that ended before next_attempt() recorded it is not recorded.
  std::shared_ptr<ReplicaSession> session_;
  uint64_t session_request_ = 0;
  uint64_t ended_attempts_ = 0;
  bool done_ = false;  // guarded by mutex_
};

}  // namespace shardwise
