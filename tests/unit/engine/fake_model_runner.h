// A ModelRunner with no model, for fast engine tests. Its "KV cache" stores token ids per
// slot, and the logits of a row are a hash of the token ids its attention would read through
// the block table. So any scheduling or block bug (a wrong slot, a block shared or reused by
// mistake, a stale prefix) changes the output, and fake_greedy() says what the output must be.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "shard/runner/model_runner.h"

namespace shardwise::testing {

// Deterministic logits for the next token after `prefix`: [vocab].
std::vector<float> fake_logits(std::span<const int32_t> prefix, int vocab);

// The greedy continuation of `prompt` under fake_logits, with the engine's stop rules.
std::vector<int32_t> fake_greedy(std::vector<int32_t> prompt, int max_tokens,
                                 const std::vector<int32_t>& stop_ids, int vocab);

class FakeModelRunner : public ModelRunner {
 public:
  // eos_token_ids = {2}.
  FakeModelRunner(int num_blocks, int block_size, int vocab, int context);

  const LlamaConfig& config() const override { return config_; }
  int num_kv_blocks() const override { return num_blocks_; }
  int block_size() const override { return block_size_; }
  StatusOr<std::vector<float>> execute(const ForwardBatch& batch) override;
  Status validate(const ForwardBatch& batch) const override;
  // With set_samples_on_device(true), a stand-in for the GPU runner's sampler: argmax at
  // temperature 0, else a token fixed by (seed, offset) alone, and every call counted.
  bool samples_on_device() const override { return samples_on_device_; }
  StatusOr<std::vector<int32_t>> execute_and_sample(const ForwardBatch& batch,
                                                    std::span<const RowSampling> rows) override;
  void set_samples_on_device(bool on) { samples_on_device_ = on; }
  int device_sampled_rows() const { return device_sampled_rows_; }

  void fail_next_execute() { fail_next_ = true; }
  int64_t executed_tokens() const { return executed_tokens_; }

 private:
  LlamaConfig config_;
  int num_blocks_;
  int block_size_;
  std::vector<int32_t> slots_;  // [num_blocks * block_size] token id, -1 never written
  bool fail_next_ = false;
  bool samples_on_device_ = false;
  int device_sampled_rows_ = 0;
  int64_t executed_tokens_ = 0;
};

}  // namespace shardwise::testing
