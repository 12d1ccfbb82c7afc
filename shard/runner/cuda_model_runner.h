// ModelRunner on the GPU: a CudaLlamaModel and its device KV cache. At TP > 1 it is the local
// runner of shard/runner/tp_model_runner.h's leader and followers: plans travel over the host
// communicator, activations are reduced over the device one.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "kernels/cuda/sampling.h"
#include "models/cuda_llama_model.h"
#include "shard/runner/model_runner.h"

namespace shardwise {

class CudaModelRunner final : public ModelRunner {
 public:
  CudaModelRunner(CudaLlamaModel& model, CudaKvCache cache)
      : model_(model), cache_(std::move(cache)) {}
  static StatusOr<std::unique_ptr<CudaModelRunner>> make(CudaLlamaModel& model, int num_kv_blocks,
                                                         int block_size);

  const LlamaConfig& config() const override { return model_.config(); }
  int num_kv_blocks() const override { return cache_.num_blocks(); }
  int block_size() const override { return cache_.block_size(); }
  StatusOr<std::vector<float>> execute(const ForwardBatch& batch) override {
    return model_.forward(batch, cache_);
  }
  Status execute_discarding_logits(const ForwardBatch& batch) override {
    return model_.forward_discarding_logits(batch, cache_);
  }
  bool samples_on_device() const override { return true; }
  // Samples each logit row on the device: a step copies back only token ids.
  StatusOr<std::vector<int32_t>> execute_and_sample(const ForwardBatch& batch,
                                                    std::span<const RowSampling> rows) override;
  Status validate(const ForwardBatch& batch) const override {
    return model_.validate(batch, cache_);
  }
  StatusOr<bool> reserve(const ForwardBatch& batch) override {
    return model_.reserve(batch, cache_);
  }
  void release_reserved() override { model_.release_step_buffers(); }
  CudaLlamaModel& model() { return model_; }

 private:
  CudaLlamaModel& model_;
  CudaKvCache cache_;
};

// KV cache blocks for a budget of `kv_cache_gb` GiB, or (0) `fraction` of the device memory
// free now less a reserve for activations. RESOURCE_EXHAUSTED, with the sizes, when not even
// one context window of `min_tokens` fits.
StatusOr<int> cuda_kv_blocks_for_budget(const CudaLlamaModel& model, int block_size,
                                        double kv_cache_gb, double fraction, int min_tokens);

}  // namespace shardwise
