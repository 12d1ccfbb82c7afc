// Shard.Serve: one coordinator stream carrying many requests. The engine loop pushes each
// request's events into the stream's outbox and, after each loop iteration, flushes it: one
// message carries that step's tokens for every request on the stream, and while a write is in
// flight the next steps' tokens gather behind it. No thread waits per request.
#pragma once

#include <grpcpp/support/server_callback.h>

#include <memory>
#include <mutex>
#include <unordered_map>

#include "shard/serve/engine_loop.h"
#include "shardwise/v1/shard.pb.h"

namespace shardwise {

class ServeStream : public std::enable_shared_from_this<ServeStream> {
 public:
  // Creates the stream and its gRPC reactor (which deletes itself when the call is done).
  static std::pair<std::shared_ptr<ServeStream>,
                   grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse>*>
  open(EngineLoop& loop);

  // The leader is shutting down: new requests are refused with UNAVAILABLE, and the stream
  // ends with OK once its running requests have finished.
  void drain();

  class Reactor;
  class RequestSink;
  explicit ServeStream(EngineLoop& loop) : loop_(loop) {}

 private:
  // From the reactor, on gRPC threads.
  void on_request(const v1::ShardServeRequest& request);
  void on_write_done(bool ok);
  // The client half-closed or went away, or broke the protocol (`status`, which ends the
  // stream): cancels every request.
  void on_closed(const grpc::Status& status = grpc::Status::OK);
  void on_reactor_done();

  // From the request sinks, on the loop thread.
  void append(uint64_t request_id, const StatusOr<StreamEvent>& item);
  void flush();

  // Requires mutex_: the update of `request_id` in the next message.
  v1::ShardRequestUpdate& pending_update(uint64_t request_id);
  void fail_locked(uint64_t request_id, const Status& status);
  // Requires mutex_: moves pending_ to writing_ and returns true when a write should start.
  bool take_pending_locked();
  // Requires mutex_: returns true when the reactor should Finish now.
  bool finish_due_locked();
  // Outside mutex_: starts the write or the Finish the flags say on `reactor`, read from
  // reactor_ in the same critical section that set them.
  void act(Reactor* reactor, bool write, bool finish);

  EngineLoop& loop_;
  std::mutex mutex_;
  Reactor* reactor_ = nullptr;  // guarded by mutex_; null once gRPC is done with the call
  std::unordered_map<uint64_t, std::shared_ptr<RequestSink>> requests_;  // running ones
  v1::ShardServeResponse pending_;                                       // the next message
  std::unordered_map<uint64_t, int> pending_index_;  // request id -> its update in pending_
  v1::ShardServeResponse writing_;                   // the message being written
  bool write_in_flight_ = false;
  bool closed_ = false;  // the client is done: its requests are cancelled, output dropped
  bool draining_ = false;
  bool finished_ = false;    // Finish was called
  grpc::Status end_status_;  // what Finish says; set with closed_
};

}  // namespace shardwise
