#include "shard/engine_loop.h"

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

std::shared_ptr<EventQueue> EngineLoop::submit(Request request) {
  auto queue = std::make_shared<EventQueue>();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      queue->push(unavailable("the shard is shutting down"));
      return queue;
    }
    new_requests_.emplace_back(std::move(request), queue);
  }
  wake_.notify_one();
  return queue;
}

void EngineLoop::cancel(const std::shared_ptr<EventQueue>& queue) {
  {
    std::lock_guard lock(mutex_);
    cancels_.push_back(queue);
  }
  wake_.notify_one();
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
  std::vector<std::pair<Request, std::shared_ptr<EventQueue>>> requests;
  std::vector<std::shared_ptr<EventQueue>> cancels;
  {
    std::lock_guard lock(mutex_);
    requests.swap(new_requests_);
    cancels.swap(cancels_);
  }
  for (auto& [request, queue] : requests) {
    // The engine's copy of the callback keeps the queue alive until the last event.
    request.on_event = [queue, &live](const StreamEvent& event) {
      if (event.finish_reason) live.erase(event.request_id);
      queue->push(event);
    };
    StatusOr<RequestId> id = engine.add_request(std::move(request));
    if (!id.ok()) {
      queue->push(id.status());
      continue;
    }
    queue->id_ = *id;
    live.insert(*id);
  }
  for (const auto& queue : cancels) {
    if (queue->id_) engine.cancel(*queue->id_);
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
  std::lock_guard lock(mutex_);
  for (auto& [request, queue] : new_requests_)
    queue->push(unavailable("the shard is shutting down"));
  new_requests_.clear();
}

}  // namespace shardwise
