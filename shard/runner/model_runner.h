// What the engine drives: one replica's model and KV cache. The engine owns the block table
// (which cache blocks each sequence uses); the runner owns the cache memory and executes
// ForwardBatches. On a tensor-parallel group the leader's runner also sends each batch to the
// followers (as a StepPlan), so the engine never knows how many ranks there are.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "common/status.h"
#include "models/forward_batch.h"
#include "models/llama_model.h"

namespace shardwise {

// One logit row's sampling choices for a runner that samples on the device: the subset of
// SamplingParams without penalties and log-probabilities (see device_samplable()).
struct RowSampling {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
  uint64_t offset = 0;  // tokens the request sampled before: seed and offset pick the draw
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const LlamaConfig& config() const = 0;
  virtual int num_kv_blocks() const = 0;
  virtual int block_size() const = 0;
  // Runs one step: writes the batch's K/V into the cache and returns the logits of
  // batch.logit_rows over the full vocabulary, [n_rows, vocab_size].
  virtual StatusOr<std::vector<float>> execute(const ForwardBatch& batch) = 0;
  // As execute(), for a tensor-parallel follower, which needs no logits: a runner whose logits
  // live on a device leaves them there instead of copying [n_rows, vocab] floats back.
  virtual Status execute_discarding_logits(const ForwardBatch& batch) {
    return execute(batch).status();
  }
  // The checks execute() makes first (ids, positions, slots, block tables), running nothing.
  virtual Status validate(const ForwardBatch& batch) const = 0;

  // Makes room for what execute(batch) works in (the GPU runner's step buffers) before it
  // runs. Returns whether it had to grow them, or RESOURCE_EXHAUSTED when the memory is not
  // there: the step's requests fail and the replica lives. Growth depends only on the batches
  // seen, so every rank of a tensor-parallel group grows at the same steps; the group then
  // agrees on the outcome before any collective of the step (shard/runner/tp_model_runner.h).
  virtual StatusOr<bool> reserve(const ForwardBatch& /*batch*/) { return false; }
  // Frees what reserve() grew: another rank of the group could not grow its own.
  virtual void release_reserved() {}

  // True when execute_and_sample() samples where the logits are (the GPU), so that a step
  // copies back token ids instead of [n_rows, vocab] logits.
  virtual bool samples_on_device() const { return false; }
  // As execute(), then draws one token per logit row, rows[i] for batch.logit_rows[i].
  // Only runners whose samples_on_device() is true implement it.
  virtual StatusOr<std::vector<int32_t>> execute_and_sample(const ForwardBatch& /*batch*/,
                                                            std::span<const RowSampling> /*rows*/) {
    return unimplemented("this runner samples on the host: call execute()");
  }
};

// Cache blocks of `block_size` tokens that hold `tokens` tokens.
inline int kv_blocks_for_tokens(int tokens, int block_size) {
  return (tokens + block_size - 1) / block_size;
}

// A runner in this process: a model (any TP group it was built with) and its cache.
class LocalModelRunner : public ModelRunner {
 public:
  LocalModelRunner(LlamaModel& model, int num_kv_blocks, int block_size)
      : model_(model), cache_(model.make_kv_cache(num_kv_blocks, block_size)) {}

  const LlamaConfig& config() const override { return model_.config(); }
  int num_kv_blocks() const override { return cache_.num_blocks(); }
  int block_size() const override { return cache_.block_size(); }
  // Host memory running out in the forward pass fails the step's requests, not the process.
  StatusOr<std::vector<float>> execute(const ForwardBatch& batch) override {
    try {
      return model_.forward(batch, cache_);
    } catch (const std::bad_alloc&) {
      return resource_exhausted("out of host memory running a step of {} tokens", batch.n_tokens());
    }
  }
  Status validate(const ForwardBatch& batch) const override {
    return model_.validate(batch, cache_);
  }

 private:
  LlamaModel& model_;
  PagedKvCache cache_;
};

}  // namespace shardwise
