// The serving engine of one model replica: takes requests, and on every step() plans one
// forward pass over many sequences (Scheduler), runs it (ModelRunner), samples each finished
// row and streams the tokens. Single-threaded: call everything from one thread.
#pragma once

#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "common/status.h"
#include "shard/engine/block_manager.h"
#include "shard/engine/request.h"
#include "shard/engine/scheduler.h"
#include "shard/runner/model_runner.h"

namespace shardwise {

struct EngineOptions {
  SchedulerOptions scheduler;
  bool enable_prefix_caching = true;
};

struct EngineStats {
  int64_t steps = 0;             // forward passes run
  int64_t scheduled_tokens = 0;  // tokens fed through them (prefill and decode)
  int64_t generated_tokens = 0;  // tokens sampled
  int64_t preemptions = 0;
  int64_t device_sampled_steps = 0;  // steps whose tokens were drawn by the runner's device
};

class Engine {
 public:
  Engine(ModelRunner& runner, EngineOptions options = {});

  // Validates the request (INVALID_ARGUMENT / OUT_OF_RANGE, nothing queued) and queues it.
  StatusOr<RequestId> add_request(Request request);
  // Marks a queued or running request to stop; its blocks are freed and its final event
  // (kCancelled) sent at the next step. False when the id is unknown or already finished.
  bool cancel(RequestId id);
  // One scheduling iteration and forward pass. A failing forward pass finishes the
  // sequences it carried with kError and returns its status; the engine stays usable.
  Status step();
  bool has_unfinished() const { return !sequences_.empty(); }
  int num_unfinished() const { return static_cast<int>(sequences_.size()); }

  const BlockManager& block_manager() const { return blocks_; }
  const Scheduler& scheduler() const { return scheduler_; }
  const EngineStats& stats() const { return stats_; }
  const LlamaConfig& config() const { return runner_.config(); }

 private:
  Status validate(const Request& request) const;
  ForwardBatch build_batch(const SchedulerOutput& plan) const;
  // Runs the batch and draws the token of each sampling chunk: on the device when the runner
  // can and every row's parameters allow it (token ids come back, not logits), else on the host.
  StatusOr<std::vector<SampledToken>> run_and_sample(const SchedulerOutput& plan,
                                                     const ForwardBatch& batch);
  void stream(const SchedulerOutput& plan, std::vector<SampledToken> sampled);
  bool is_stop_token(const Sequence& seq, int32_t token) const;
  void finish(Sequence* seq, StreamEvent event, FinishReason reason);

  ModelRunner& runner_;
  BlockManager blocks_;
  Scheduler scheduler_;
  std::unordered_map<RequestId, std::unique_ptr<Sequence>> sequences_;  // unfinished ones
  std::unordered_set<RequestId> cancel_requests_;
  RequestId next_id_ = 1;
  EngineStats stats_;
};

}  // namespace shardwise
