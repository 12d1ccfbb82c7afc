// The coordinator's stream to one replica (Shard.Serve), shared by every request routed there:
// requests start and cancel as messages on it, and each message from the shard carries the
// progress of many requests (one engine step's tokens for all of them), so a token costs the
// coordinator a share of a message instead of a message of its own.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/status.h"
#include "coordinator/shard_dialer.h"
#include "shardwise/v1/shard.grpc.pb.h"

namespace shardwise {

// Receives one request's progress. The session calls it one call at a time and never after
// on_end, from gRPC threads or from the thread that calls cancel(); it must not block.
class ShardRequestListener {
 public:
  virtual ~ShardRequestListener() = default;
  // Tokens, and on the request's last update its finish reason. Returns true to end the
  // request early (a stop string matched): the session cancels it, and on_end follows.
  virtual bool on_update(const v1::ShardRequestUpdate& update) = 0;
  // Called once: OK after the update with the finish reason; the shard's error; `why` given to
  // cancel(); or UNAVAILABLE when the stream to the replica broke.
  virtual void on_end(const Status& status) = 0;
};

struct SessionOptions {
  const ShardDialer* dialer = nullptr;  // presents the cluster token; null: none
  // Stamped with the steady clock (ns) at every message from the shard: traffic on the stream
  // is a sign of life, like a heartbeat. May be null.
  std::shared_ptr<std::atomic<int64_t>> last_seen;
};

class ReplicaSession final
    : public grpc::ClientBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse>,
      public std::enable_shared_from_this<ReplicaSession> {
 public:
  // Opens the stream; `replica` names it in errors.
  static std::shared_ptr<ReplicaSession> open(v1::Shard::Stub& stub, std::string replica,
                                              SessionOptions options = {});
  ReplicaSession(std::string replica, std::shared_ptr<std::atomic<int64_t>> last_seen)
      : replica_(std::move(replica)), last_seen_(std::move(last_seen)) {}  // see open()

  // Starts `request`, returning its id for cancel(); UNAVAILABLE when the stream has broken
  // (open another).
  StatusOr<uint64_t> start(const v1::ShardGenerateRequest& request,
                           std::shared_ptr<ShardRequestListener> listener);
  // Ends request `id` with `why` now (on_end runs on this thread, or right after the update
  // being delivered to it), and tells the shard to stop it. A no-op for a request that ended.
  void cancel(uint64_t id, const Status& why);
  // Breaks the stream: every request ends (the replica left rotation).
  void close();
  bool broken() const;

  // Waits up to `timeout` until every session in the process has been destroyed; false if some
  // are left. A session holds its channel until then, and is often let go of last on one of
  // gRPC's callback threads. gRPC 1.51 runs every callback on threads of one process-wide queue
  // that it stops, joins and frees when the last channel or server using it goes: done from one
  // of those threads, the thread frees the queue it is still reading (an ASan double free in
  // grpc_cq_internal_unref). Whoever lets go of a channel that sessions use, and with it perhaps
  // of the last user of that queue, closes them and waits here first.
  static bool wait_until_none_left(std::chrono::milliseconds timeout);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  // One running request: serialises its listener's calls, and defers an end that comes while
  // an update is being delivered.
  struct Entry;

  void deliver(uint64_t id, const v1::ShardRequestUpdate& update);
  // Ends `entry` with `status` unless it has ended.
  static void end(Entry& entry, const Status& status);
  // Queues `message`; returns true when the caller must StartWrite(&writing_). Requires mutex_.
  bool queue_locked(v1::ShardServeRequest&& message);
  // No more writes will start: lets gRPC finish the call. Requires mutex_; returns true when
  // the caller must RemoveHold().
  bool release_hold_locked();

  // Counts this session among the live ones from construction until every other member,
  // context_ and its channel among them, has been destroyed: the first member, the last to go.
  struct LiveMark {
    LiveMark();
    ~LiveMark();
    LiveMark(const LiveMark&) = delete;
    LiveMark& operator=(const LiveMark&) = delete;
  };

  const LiveMark live_mark_;
  const std::string replica_;
  const std::shared_ptr<std::atomic<int64_t>> last_seen_;
  grpc::ClientContext context_;
  v1::ShardServeResponse incoming_;  // the read in flight
  v1::ShardServeRequest writing_;    // the write in flight
  mutable std::mutex mutex_;
  uint64_t next_id_ = 1;                                          // guarded by mutex_
  std::unordered_map<uint64_t, std::shared_ptr<Entry>> running_;  // guarded by mutex_
  std::deque<v1::ShardServeRequest> outbox_;                      // guarded by mutex_
  bool write_in_flight_ = false;                                  // guarded by mutex_
  bool broken_ = false;                                           // guarded by mutex_
  bool hold_released_ = false;                                    // guarded by mutex_
  bool done_ = false;                     // guarded by mutex_: OnDone ran, the call is gone
  std::shared_ptr<ReplicaSession> self_;  // keeps the session alive until OnDone
};

}  // namespace shardwise
