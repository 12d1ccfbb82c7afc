// One generation request in flight, as an asynchronous state machine driven by gRPC's callback
// threads: it routes to a replica, reads the shard's stream with a client reactor, detokenizes
// and applies stop strings on the thread that received each message, and retries on another
// replica when one fails before sending a token. No thread waits on it, so a token costs no
// context switch here. Both front ends use it: gRPC through a server write reactor, HTTP
// through Generation::run's blocking wrapper.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "coordinator/generation.h"

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

class GenerateCall : public std::enable_shared_from_this<GenerateCall> {
 public:
  // Starts `request`; `sink` must outlive the call's on_done.
  static std::shared_ptr<GenerateCall> start(Registry& registry, Metrics& metrics,
                                             PreparedRequest request, ResponseSink& sink);
  GenerateCall(Registry& registry, Metrics& metrics, PreparedRequest request, ResponseSink& sink);

  // Ends the request with `why` (e.g. the client went away): cancels its shard call. Any thread;
  // a no-op once the request has ended.
  void cancel(const Status& why);

 private:
  class ShardStream;
  // What one attempt at one replica has done: the tokens already streamed (none, if it may be
  // retried).
  struct Attempt;

  void next_attempt();
  // Returns true when the shard call must be cancelled (a stop string or a local failure).
  bool on_shard_message(const v1::ShardGenerateResponse& message);
  void on_stream_done(ShardStream* stream, const grpc::Status& status);
  Status attempt_status(const grpc::Status& status);
  void finish(const Status& status);

  Registry& registry_;
  Metrics& metrics_;
  const PreparedRequest request_;
  ResponseSink& sink_;
  const std::chrono::steady_clock::time_point start_;
  std::set<std::string> tried_;
  Status last_failure_;  // of the last replica tried, for "every replica failed"
  // Touched only by the attempt's callbacks, which gRPC runs one at a time.
  std::shared_ptr<Replica> replica_;
  std::unique_ptr<Attempt> attempt_;

  std::mutex mutex_;
  Status cancelled_;               // guarded by mutex_: set by cancel()
  ShardStream* stream_ = nullptr;  // guarded by mutex_: the shard call in flight
  bool done_ = false;              // guarded by mutex_
};

}  // namespace shardwise
