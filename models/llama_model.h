// The Llama forward pass on the CPU, for one tensor-parallel rank.
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "common/status.h"
#include "models/forward_batch.h"
#include "models/llama_weights.h"
#include "models/model_config.h"
#include "models/paged_kv_cache.h"

namespace shardwise {

class LlamaModel {
 public:
  // `comm` is this rank's tensor-parallel group; it must outlive the model.
  LlamaModel(LlamaConfig config, LlamaWeights weights, Communicator& comm);

  const LlamaConfig& config() const { return config_; }
  const AttentionPartition& attention_partition() const { return weights_.attention; }

  // A cache of `num_blocks` blocks of `block_size` tokens for this rank's KV heads.
  PagedKvCache make_kv_cache(int num_blocks, int block_size) const;

  // Validates the batch, writes its tokens' K/V into `cache` and returns the logits of
  // batch.logit_rows over the full vocabulary, [n_rows, vocab_size], then the final normed
  // hidden states of batch.hidden_rows, [n_hidden, hidden_size].
  StatusOr<std::vector<float>> forward(const ForwardBatch& batch, PagedKvCache& cache);
  // The checks forward() makes first: ids in the vocabulary, positions in the context window,
  // slots and block tables inside the cache.
  Status validate(const ForwardBatch& batch, const PagedKvCache& cache) const;

 private:
  void attention_block(int layer, const ForwardBatch& batch, const float* normed, float* out,
                       PagedKvCache& cache);
  void mlp_block(int layer, const float* normed, float* out, int n_tokens);
  std::vector<float> gather_logits(const std::vector<float>& local_logits, int n_rows);

  LlamaConfig config_;
  LlamaWeights weights_;
  Communicator& comm_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
};

// Loads config.json and this rank's weights from a Hugging Face model folder.
StatusOr<std::unique_ptr<LlamaModel>> load_llama_model(const std::filesystem::path& model_dir,
                                                       Communicator& comm);

}  // namespace shardwise
