// Running one model replica across a tensor-parallel group. The leader's runner broadcasts
// each batch as a StepPlan and then runs its own slice; followers run the same plans in a loop.
// Every rank ends a forward pass with the full logits (all-gather); only the leader samples.
// The local runner is any ModelRunner over this rank's slice (CPU or GPU); the plans travel
// over the host communicator.
#pragma once

#include "comm/communicator.h"
#include "shard/runner/model_runner.h"
#include "shard/runner/step_plan.h"

namespace shardwise {

class LeaderModelRunner final : public ModelRunner {
 public:
  // `local` runs this rank's slice; `comm` is the TP group, whose rank 0 this process must be.
  // Both must outlive the runner.
  LeaderModelRunner(ModelRunner& local, Communicator& comm);
  ~LeaderModelRunner() override;  // sends the followers kShutdown

  const LlamaConfig& config() const override { return local_.config(); }
  int num_kv_blocks() const override { return local_.num_kv_blocks(); }
  int block_size() const override { return local_.block_size(); }
  StatusOr<std::vector<float>> execute(const ForwardBatch& batch) override;
  Status validate(const ForwardBatch& batch) const override { return local_.validate(batch); }
  bool samples_on_device() const override { return local_.samples_on_device(); }
  // Followers run the plan with execute_discarding_logits(): the same collectives; only the
  // leader samples.
  StatusOr<std::vector<int32_t>> execute_and_sample(const ForwardBatch& batch,
                                                    std::span<const RowSampling> rows) override;

 private:
  // Validates the batch and sends it to the followers.
  Status send_batch(const ForwardBatch& batch);
  void send(const StepPlan& plan);

  ModelRunner& local_;
  Communicator& comm_;
};

// A follower's whole life: receive plans and run them on `local` until the leader sends
// kShutdown. Errors (a bad plan, a batch the model rejects) are returned; the caller aborts the
// group.
Status run_follower_loop(ModelRunner& local, Communicator& comm);

}  // namespace shardwise
