#include "coordinator/replica_session.h"

#include <condition_variable>
#include <optional>

namespace shardwise {
namespace {

bool is_last(const v1::ShardRequestUpdate& update) {
  return !update.finish_reason().empty() || update.error_code() != 0;
}

// The sessions alive in the process (wait_until_none_left).
struct LiveSessions {
  std::mutex mutex;
  std::condition_variable none_left;
  int count = 0;  // guarded by mutex
};

// Never destroyed: a session may outlive main() on a gRPC thread.
LiveSessions& live_sessions() {
  static auto* sessions = new LiveSessions;
  return *sessions;
}

}  // namespace

ReplicaSession::LiveMark::LiveMark() {
  LiveSessions& live = live_sessions();
  std::lock_guard lock(live.mutex);
  ++live.count;
}

ReplicaSession::LiveMark::~LiveMark() {
  LiveSessions& live = live_sessions();
  std::lock_guard lock(live.mutex);
  if (--live.count == 0) live.none_left.notify_all();
}

bool ReplicaSession::wait_until_none_left(std::chrono::milliseconds timeout) {
  LiveSessions& live = live_sessions();
  std::unique_lock lock(live.mutex);
  return live.none_left.wait_for(lock, timeout, [&] { return live.count == 0; });
}

struct ReplicaSession::Entry {
  explicit Entry(std::shared_ptr<ShardRequestListener> l) : listener(std::move(l)) {}
  std::shared_ptr<ShardRequestListener> listener;
  std::mutex mutex;
  bool delivering = false;         // guarded by mutex: on_update is running
  bool ended = false;              // guarded by mutex: on_end was called
  std::optional<Status> deferred;  // guarded by mutex: an end that came while delivering
};

std::shared_ptr<ReplicaSession> ReplicaSession::open(v1::Shard::Stub& stub, std::string replica,
                                                     SessionOptions options) {
  auto session = std::make_shared<ReplicaSession>(std::move(replica), std::move(options.last_seen));
  session->self_ = session;
  if (options.dialer) options.dialer->authenticate(session->context_);
  stub.async()->Serve(&session->context_, session.get());
  // Writes start from request threads, outside any reaction: the hold keeps the call open
  // until release_hold_locked() says no more will.
  session->AddHold();
  session->StartRead(&session->incoming_);
  session->StartCall();
  return session;
}

StatusOr<uint64_t> ReplicaSession::start(const v1::ShardGenerateRequest& request,
                                         std::shared_ptr<ShardRequestListener> listener) {
  uint64_t id = 0;
  bool write = false;
  {
    std::lock_guard lock(mutex_);
    if (broken_) return unavailable("the stream to replica {} is closed", replica_);
    id = next_id_++;
    running_.emplace(id, std::make_shared<Entry>(std::move(listener)));
    v1::ShardServeRequest message;
    message.set_request_id(id);
    *message.mutable_start() = request;
    write = queue_locked(std::move(message));
  }
  if (write) StartWrite(&writing_);
  return id;
}

void ReplicaSession::cancel(uint64_t id, const Status& why) {
  std::shared_ptr<Entry> entry;
  bool write = false;
  {
    std::lock_guard lock(mutex_);
    auto it = running_.find(id);
    if (it == running_.end()) return;
    entry = std::move(it->second);
    running_.erase(it);
    if (!broken_) {
      v1::ShardServeRequest message;
      message.set_request_id(id);
      message.set_cancel(true);
      write = queue_locked(std::move(message));
    }
  }
  if (write) StartWrite(&writing_);
  end(*entry, why);
}

void ReplicaSession::close() {
  // Under mutex_, so that OnDone cannot finish the call meanwhile; TryCancel runs no reaction
  // on this thread.
  std::lock_guard lock(mutex_);
  if (!done_) context_.TryCancel();
}

bool ReplicaSession::broken() const {
  std::lock_guard lock(mutex_);
  return broken_;
}

void ReplicaSession::OnReadDone(bool ok) {
  if (!ok) {  // the call is ending: OnDone follows once the hold is released
    bool release = false;
    {
      std::lock_guard lock(mutex_);
      broken_ = true;
      release = release_hold_locked();
    }
    if (release) RemoveHold();
    return;
  }
  if (last_seen_) {
    *last_seen_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
  }
  for (const v1::ShardRequestUpdate& update : incoming_.updates()) {
    deliver(update.request_id(), update);
  }
  incoming_.Clear();
  StartRead(&incoming_);
}

void ReplicaSession::OnWriteDone(bool ok) {
  bool write = false, release = false;
  {
    std::lock_guard lock(mutex_);
    write_in_flight_ = false;
    if (!ok) broken_ = true;
    if (!broken_ && !outbox_.empty()) {
      writing_ = std::move(outbox_.front());
      outbox_.pop_front();
      write_in_flight_ = write = true;
    }
    release = release_hold_locked();
  }
  if (write) StartWrite(&writing_);
  if (release) RemoveHold();
}

void ReplicaSession::OnDone(const grpc::Status& status) {
  std::unordered_map<uint64_t, std::shared_ptr<Entry>> running;
  {
    std::lock_guard lock(mutex_);
    broken_ = done_ = true;
    running.swap(running_);
    outbox_.clear();
  }
  const Status why =
      unavailable("the stream to replica {} ended: {}", replica_,
                  status.ok() ? "the replica is shutting down" : status.error_message());
  for (auto& [id, entry] : running) end(*entry, why);
  std::shared_ptr<ReplicaSession> self = std::move(self_);  // may be the last reference
}

void ReplicaSession::deliver(uint64_t id, const v1::ShardRequestUpdate& update) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(mutex_);
    auto it = running_.find(id);
    if (it == running_.end()) return;  // cancelled here after the shard sent this
    entry = it->second;
    if (is_last(update)) running_.erase(it);
  }
  {
    std::lock_guard lock(entry->mutex);
    if (entry->ended) return;
    entry->delivering = true;
  }
  const bool stop = entry->listener->on_update(update);
  std::optional<Status> end_now;
  {
    std::lock_guard lock(entry->mutex);
    entry->delivering = false;
    if (!entry->ended) {
      if (is_last(update)) {
        end_now = update.error_code() == 0 ? ok_status()
                                           : Status(static_cast<StatusCode>(update.error_code()),
                                                    update.error_message());
      } else if (entry->deferred) {
        end_now = *entry->deferred;
      }
      entry->ended = end_now.has_value();
    }
  }
  if (end_now) return entry->listener->on_end(*end_now);
  if (stop) cancel(id, Status(StatusCode::kCancelled, "ended by the coordinator"));
}

void ReplicaSession::end(Entry& entry, const Status& status) {
  {
    std::lock_guard lock(entry.mutex);
    if (entry.ended) return;
    if (entry.delivering) {
      if (!entry.deferred) entry.deferred = status;
      return;
    }
    entry.ended = true;
  }
  entry.listener->on_end(status);
}

bool ReplicaSession::queue_locked(v1::ShardServeRequest&& message) {
  if (write_in_flight_) {
    outbox_.push_back(std::move(message));
    return false;
  }
  writing_ = std::move(message);
  write_in_flight_ = true;
  return true;
}

bool ReplicaSession::release_hold_locked() {
  if (!broken_ || write_in_flight_ || hold_released_) return false;
  hold_released_ = true;
  return true;
}

}  // namespace shardwise
