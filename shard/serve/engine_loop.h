// A thread that owns an Engine and its ModelRunner, so that many gRPC handler threads can
// share one replica: submit() and cancel() post to a mutex-protected inbox, the loop thread
// adds and cancels requests, steps while work exists, and hands each event to the request's
// sink. The Engine itself stays single-threaded.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "shard/engine/engine.h"

namespace shardwise {

// Where the events of one request go, in order. A request the engine rejects gets a single
// error item (e.g. INVALID_ARGUMENT).
class EventSink {
 public:
  virtual ~EventSink() = default;
  // On the loop thread (or on submit()'s caller, for a request refused while the loop stops);
  // must not block.
  virtual void push(StatusOr<StreamEvent> item) = 0;
  // On the loop thread, after a loop iteration pushed to this sink: a sink that gathers the
  // events of many requests into one message sends it now.
  virtual void flush() {}

 private:
  friend class EngineLoop;
  std::optional<RequestId> id_;  // set and read on the loop thread only
};

// A sink drained by one reader thread.
class EventQueue final : public EventSink {
 public:
  void push(StatusOr<StreamEvent> item) override;
  // Every item queued now, oldest first; waits up to `timeout` for the first (empty if none).
  std::vector<StatusOr<StreamEvent>> pop_all(std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<StatusOr<StreamEvent>> items_;
};

struct EngineLoopStats {
  int running = 0;           // unfinished sequences (scheduled or waiting)
  int waiting = 0;           // of those, sequences waiting to be scheduled
  float kv_cache_usage = 0;  // fraction of KV blocks in use
};

class EngineLoop {
 public:
  // `runner` must outlive the loop; its thread is the only one that touches it.
  EngineLoop(ModelRunner& runner, EngineOptions options);
  ~EngineLoop();  // stop()s

  // Queues a request (its on_event is replaced); its events go to `sink`, which the loop keeps
  // until the last one.
  void submit(Request request, std::shared_ptr<EventSink> sink);
  // The same, with the events on a queue for a reader thread.
  std::shared_ptr<EventQueue> submit(Request request);
  // Cancels the request behind `sink` (its last event will be kCancelled).
  void cancel(const std::shared_ptr<EventSink>& sink);
  // Cancels everything still queued or running and joins the thread.
  void stop();

  EngineLoopStats stats() const;

 private:
  void run();
  void drain_inbox(Engine& engine, std::unordered_set<RequestId>& live);
  // Pushes to `sink` and remembers it for flush_sinks().
  void push(const std::shared_ptr<EventSink>& sink, StatusOr<StreamEvent> item);
  void flush_sinks();

  ModelRunner& runner_;
  EngineOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::pair<Request, std::shared_ptr<EventSink>>> new_requests_;
  std::vector<std::shared_ptr<EventSink>> cancels_;
  std::vector<std::shared_ptr<EventSink>> pushed_;  // loop thread only: flush after this iteration
  bool stopping_ = false;
  std::atomic<int> running_{0};
  std::atomic<int> waiting_{0};
  std::atomic<float> kv_usage_{0};
  std::thread thread_;
};

}  // namespace shardwise
