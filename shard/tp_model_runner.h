// Running one model replica across a tensor-parallel group. The leader's runner broadcasts
// each batch as a StepPlan and then runs its own slice; followers run the same plans in a loop.
// Every rank ends a forward pass with the full logits (all-gather); only the leader samples.
#pragma once

#include "comm/communicator.h"
#include "shard/model_runner.h"
#include "shard/step_plan.h"

namespace shardwise {

class LeaderModelRunner final : public ModelRunner {
 public:
  // `comm` is the TP group; this process must be its rank 0.
  LeaderModelRunner(LlamaModel& model, Communicator& comm, int num_kv_blocks, int block_size);
  ~LeaderModelRunner() override;  // sends the followers kShutdown

  const LlamaConfig& config() const override { return local_.config(); }
  int num_kv_blocks() const override { return local_.num_kv_blocks(); }
  int block_size() const override { return local_.block_size(); }
  StatusOr<std::vector<float>> execute(const ForwardBatch& batch) override;

 private:
  void send(const StepPlan& plan);

  LocalModelRunner local_;
  Communicator& comm_;
};

// A follower's whole life: receive plans and run them until the leader sends kShutdown.
// Errors (a bad plan, a batch the model rejects) are returned; the caller aborts the group.
Status run_follower_loop(LlamaModel& model, Communicator& comm, int num_kv_blocks, int block_size);

}  // namespace shardwise
