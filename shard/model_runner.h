// What the engine drives: one replica's model and KV cache. The engine owns the block table
// (which cache blocks each sequence uses); the runner owns the cache memory and executes
// ForwardBatches. On a tensor-parallel group the leader's runner also sends each batch to the
// followers (as a StepPlan), so the engine never knows how many ranks there are.
#pragma once

#include <memory>
#include <vector>

#include "common/status.h"
#include "models/forward_batch.h"
#include "models/llama_model.h"

namespace shardwise {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const LlamaConfig& config() const = 0;
  virtual int num_kv_blocks() const = 0;
  virtual int block_size() const = 0;
  // Runs one step: writes the batch's K/V into the cache and returns the logits of
  // batch.logit_rows over the full vocabulary, [n_rows, vocab_size].
  virtual StatusOr<std::vector<float>> execute(const ForwardBatch& batch) = 0;
  // The checks execute() makes first (ids, positions, slots, block tables), running nothing.
  virtual Status validate(const ForwardBatch& batch) const = 0;
};

// A runner in this process: a model (any TP group it was built with) and its cache.
class LocalModelRunner : public ModelRunner {
 public:
  LocalModelRunner(LlamaModel& model, int num_kv_blocks, int block_size)
      : model_(model), cache_(model.make_kv_cache(num_kv_blocks, block_size)) {}

  const LlamaConfig& config() const override { return model_.config(); }
  int num_kv_blocks() const override { return cache_.num_blocks(); }
  int block_size() const override { return cache_.block_size(); }
  StatusOr<std::vector<float>> execute(const ForwardBatch& batch) override {
    return model_.forward(batch, cache_);
  }
  Status validate(const ForwardBatch& batch) const override {
    return model_.validate(batch, cache_);
  }

 private:
  LlamaModel& model_;
  PagedKvCache cache_;
};

}  // namespace shardwise
