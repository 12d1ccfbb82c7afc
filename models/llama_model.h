// The Llama forward pass on the CPU, for one tensor-parallel rank.
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "common/status.h"
#include "models/cpu_model_options.h"
#include "models/forward_batch.h"
#include "models/llama_weights.h"
#include "models/model_config.h"
#include "models/paged_kv_cache.h"

namespace shardwise {

class LlamaModel {
 public:
  // `comm` is this rank's tensor-parallel group; it must outlive the model. The weights were
  // loaded with `options` (its ISA and KV cache type apply here).
  LlamaModel(LlamaConfig config, LlamaWeights weights, Communicator& comm,
             CpuModelOptions options = {});

  const LlamaConfig& config() const { return config_; }
  const AttentionPartition& attention_partition() const { return weights_.attention; }
  const CpuModelOptions& options() const { return options_; }
  // Bytes of weights one decode step reads (this rank's packed matrices).
  std::size_t weight_bytes() const { return weights_.matrix_bytes(); }

  // A cache of `num_blocks` blocks of `block_size` tokens for this rank's KV heads.
  PagedKvCache make_kv_cache(int num_blocks, int block_size) const;

  // Validates the batch, writes its tokens' K/V into `cache` and returns the logits of
  // batch.logit_rows over the full vocabulary, [n_rows, vocab_size], then the final normed
  // hidden states of batch.hidden_rows, [n_hidden, hidden_size]. Not reentrant: the
  // activations live in buffers of the model, reused from call to call.
  StatusOr<std::vector<float>> forward(const ForwardBatch& batch, PagedKvCache& cache);
  // The checks forward() makes first: ids in the vocabulary, positions in the context window,
  // slots and block tables inside the cache.
  Status validate(const ForwardBatch& batch, const PagedKvCache& cache) const;

 private:
  // Grow-only activation buffers: no allocation per layer (a 512-token prefill of a 1B model
  // would otherwise map and fault in tens of MB per layer).
  struct Activations {
    std::vector<float> residual, normed, sublayer_out;  // [n_tokens, hidden]
    std::vector<float> qkv;                             // [n_tokens, q | k | v]
    std::vector<float> q, k, v, attended;
    std::vector<int32_t> context_lens;
    std::vector<float> gate_up, activated;  // [n_tokens, 2 * local_ffn], [n_tokens, local_ffn]
    std::vector<float> logit_rows;          // [n_rows, hidden]
  };

  void attention_block(int layer, const ForwardBatch& batch, const float* normed, float* out,
                       PagedKvCache& cache);
  void mlp_block(int layer, const float* normed, float* out, int n_tokens);
  std::vector<float> gather_logits(std::vector<float> local_logits, int n_rows);

  LlamaConfig config_;
  LlamaWeights weights_;
  Communicator& comm_;
  CpuModelOptions options_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  Activations act_;
};

// Loads config.json and this rank's weights from a Hugging Face model folder.
StatusOr<std::unique_ptr<LlamaModel>> load_llama_model(const std::filesystem::path& model_dir,
                                                       Communicator& comm,
                                                       const CpuModelOptions& options = {});

}  // namespace shardwise
