#include "shard/serve/engine_loop.h"

#include <unordered_set>

#include "common/logging.h"

namespace shardwise {

void EventQueue::push(StatusOr<StreamEvent> item) {
  {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
  }
  ready_.notify_one();
}

std::vector<StatusOr<StreamEvent>> EventQueue::pop_all(std::chrono::milliseconds timeout) {
  std::vector<StatusOr<StreamEvent>> items;
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !items_.empty(); })) return items;
  items.reserve(items_.size());
  for (auto& item : items_) items.push_back(std::move(item));
  items_.clear();
  return items;
}

EngineLoop::EngineLoop(ModelRunner& runner, EngineOptions options)
    : runner_(runner), options_(options), thread_([this] { run(); }) {}

EngineLoop::~EngineLoop() { stop(); }

// Sinks are called with mutex_ released: they take their own locks, and call cancel().
void EngineLoop::submit(Request request, std::shared_ptr<EventSink> sink) {
  bool accepted = false;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      new_requests_.emplace_back(std::move(request), sink);
      accepted = true;
    }
  }
  if (!accepted) {
    sink->push(unavailable("the shard is shutting down"));
    sink->flush();
    return;
  }
  wake_.notify_one();
}

std::shared_ptr<EventQueue> EngineLoop::submit(Request request) {
  auto queue = std::make_shared<EventQueue>();
  submit(std::move(request), queue);
  return queue;
}

void EngineLoop::cancel(const std::shared_ptr<EventSink>& sink) {
  {
    std::lock_guard lock(mutex_);
    cancels_.push_back(sink);
  }
  wake_.notify_one();
}

void EngineLoop::push(const std::shared_ptr<EventSink>& sink, StatusOr<StreamEvent> item) {
  sink->push(std::move(item));
  if (pushed_.empty() || pushed_.back() != sink) pushed_.push_back(sink);
}

void EngineLoop::flush_sinks() {
  for (const auto& sink : pushed_) sink->flush();
  pushed_.clear();
}

void EngineLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

EngineLoopStats EngineLoop::stats() const {
  return {running_.load(), waiting_.load(), kv_usage_.load()};
}

// Moves the inbox into the engine. `live` holds the ids of admitted, unfinished requests.
void EngineLoop::drain_inbox(Engine& engine, std::unordered_set<RequestId>& live) {
  std::vector<std::pair<Request, std::shared_ptr<EventSink>>> requests;
  std::vector<std::shared_ptr<EventSink>> cancels;
  {
    std::lock_guard lock(mutex_);
    requests.swap(new_requests_);
    cancels.swap(cancels_);
  }
  for (auto& [request, sink] : requests) {
    // The engine's copy of the callback keeps the sink alive until the last event.
    request.on_event = [this, sink, &live](const StreamEvent& event) {
      if (event.finish_reason) live.erase(event.request_id);
      push(sink, event);
    };
    StatusOr<RequestId> id = engine.add_request(std::move(request));
    if (!id.ok()) {
      push(sink, id.status());
      continue;
    }
    sink->id_ = *id;
    live.insert(*id);
  }
  for (const auto& sink : cancels) {
    if (sink->id_) engine.cancel(*sink->id_);
  }
}

void EngineLoop::run() {
  Engine engine(runner_, options_);
  std::unordered_set<RequestId> live;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] {
        return stopping_ || !new_requests_.empty() || !cancels_.empty() || engine.has_unfinished();
      });
      if (stopping_) break;
    }
    drain_inbox(engine, live);
    if (engine.has_unfinished()) {
      Status status = engine.step();
      if (!status.ok()) log()->error("engine step: {}", status.to_string());
    }
    flush_sinks();
    const BlockManager& blocks = engine.block_manager();
    running_ = engine.num_unfinished();
    waiting_ = static_cast<int>(engine.scheduler().waiting().size());
    kv_usage_ = blocks.num_blocks() == 0
                    ? 0.0f
                    : 1.0f - static_cast<float>(blocks.num_free_blocks()) / blocks.num_blocks();
  }
  // Shutting down: every unfinished request ends with kCancelled, sent by one last step.
  for (RequestId id : std::vector<RequestId>(live.begin(), live.end())) engine.cancel(id);
  if (engine.has_unfinished()) (void)engine.step();
  std::vector<std::pair<Request, std::shared_ptr<EventSink>>> refused;
  {
    std::lock_guard lock(mutex_);
    refused.swap(new_requests_);
  }
  for (auto& [request, sink] : refused) push(sink, unavailable("the shard is shutting down"));
  flush_sinks();
}

}  // namespace shardwise
