// The weights one tensor-parallel rank holds for a Llama model, each matrix sliced to this
// rank's part (DESIGN.md, "Tensor parallelism"). Matrices that keep their stored precision are
// read in place from the mmapped checkpoint (a rank's column slice is a strided view), so
// loading copies nothing; another type (CpuModelOptions, e.g. int8) is packed once at load.
// The embedding table is read in place too: lookups widen the rows they need.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "comm/parallel_config.h"
#include "common/status.h"
#include "models/checkpoint.h"
#include "models/cpu_model_options.h"
#include "models/model_config.h"
#include "models/parallel_linear.h"

namespace shardwise {

// Which attention heads a rank owns. Query heads are split evenly; KV heads are split too,
// or, when the group is larger than num_key_value_heads, each rank holds the one KV head its
// query heads read (replicated across the ranks sharing it).
struct AttentionPartition {
  int local_heads = 0;     // query heads on this rank, e.g. 4 of 32 at TP=8
  int first_head = 0;      // global index of this rank's first query head
  int local_kv_heads = 0;  // KV heads on this rank, e.g. 1 of 8 at TP=8
  int first_kv_head = 0;   // global index of this rank's first KV head

  static StatusOr<AttentionPartition> make(const LlamaConfig& config, const TensorParallel& tp);
};

struct LlamaLayerWeights {
  std::vector<float> input_norm;  // [hidden]
  ColumnParallelLinear qkv;       // [(local_heads + 2 * local_kv_heads) * head_dim, hidden]
  RowParallelLinear o_proj;       // [hidden, local_heads * head_dim]
  std::vector<float> post_attention_norm;  // [hidden]
  ColumnParallelLinear gate_up;            // [2 * local_intermediate, hidden]: gate rows, then up
  RowParallelLinear down_proj;             // [hidden, local_intermediate]
};

struct LlamaWeights {
  AttentionPartition attention;
  Range intermediate;  // this rank's slice of the FFN dimension
  Range vocab;         // this rank's slice of the vocabulary (lm_head rows)
  std::shared_ptr<const Checkpoint> checkpoint;  // keeps the mapped tensors alive
  const TensorView* embed_tokens = nullptr;      // [vocab, hidden], stored dtype, replicated
  std::vector<LlamaLayerWeights> layers;
  std::vector<float> final_norm;  // [hidden]
  // [vocab.size(), hidden]: this rank's lm_head rows, or (tied embeddings) embed_tokens' rows.
  ColumnParallelLinear lm_head;

  // Bytes of the matrices: what one decode step reads.
  std::size_t matrix_bytes() const;
};

// Reads this rank's weights from the checkpoint in `model_dir`, checking every tensor's
// presence and shape against `config`.
StatusOr<LlamaWeights> load_llama_weights(const std::filesystem::path& model_dir,
                                          const LlamaConfig& config, const TensorParallel& tp,
                                          const CpuModelOptions& options = {});

}  // namespace shardwise
