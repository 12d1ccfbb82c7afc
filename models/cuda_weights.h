// The weights one tensor-parallel rank holds for a Llama model, on the GPU, in the compute dtype
// (BF16, or F32 for exact comparisons). Same slicing and fused layouts as LlamaWeights
// (models/llama_weights.h): q|k|v and gate|up are fused; o_proj and down_proj hold this rank's
// input columns; lm_head this rank's vocabulary rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "comm/parallel_config.h"
#include "common/dtype.h"
#include "common/status.h"
#include "models/llama_weights.h"
#include "models/model_config.h"

namespace shardwise {

// One cudaMalloc, freed with the object; move-only.
class DeviceAllocation {
 public:
  DeviceAllocation() = default;
  // Fails with RESOURCE_EXHAUSTED (naming `what` and the sizes) when the device lacks memory.
  static StatusOr<DeviceAllocation> make(std::size_t bytes, const char* what);
  ~DeviceAllocation();
  DeviceAllocation(DeviceAllocation&& other) noexcept;
  DeviceAllocation& operator=(DeviceAllocation&& other) noexcept;
  DeviceAllocation(const DeviceAllocation&) = delete;
  DeviceAllocation& operator=(const DeviceAllocation&) = delete;

  void* get() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

struct CudaLayerWeights {
  void* input_norm = nullptr;           // [hidden]
  void* qkv = nullptr;                  // [(local_heads + 2 * local_kv_heads) * head_dim, hidden]
  void* o_proj = nullptr;               // [hidden, local_heads * head_dim]
  void* post_attention_norm = nullptr;  // [hidden]
  void* gate_up = nullptr;              // [2 * local_intermediate, hidden]: gate rows, then up
  void* down_proj = nullptr;            // [hidden, local_intermediate]
};

struct CudaWeights {
  DType dtype = DType::kBF16;  // of every tensor below
  AttentionPartition attention;
  Range intermediate;              // this rank's slice of the FFN dimension
  Range vocab;                     // this rank's slice of the vocabulary
  int64_t padded_local_vocab = 0;  // ceil(vocab_size / tp): lm_head rows, zero rows past vocab
  void* embed_tokens = nullptr;    // [vocab_size, hidden], replicated
  std::vector<CudaLayerWeights> layers;
  void* final_norm = nullptr;  // [hidden]
  void* lm_head = nullptr;     // [padded_local_vocab, hidden]
  DeviceAllocation storage;    // one allocation holding all of the above

  std::size_t bytes() const { return storage.bytes(); }
};

// Bytes this rank's weights take on the device in `dtype`.
StatusOr<std::size_t> cuda_weight_bytes(const LlamaConfig& config, const TensorParallel& tp,
                                        DType dtype);

// Reads this rank's slices from the checkpoint in `model_dir` one tensor at a time (host memory
// holds one fp32 tensor at once), converts them to `dtype` and uploads them.
StatusOr<CudaWeights> load_cuda_weights(const std::filesystem::path& model_dir,
                                        const LlamaConfig& config, const TensorParallel& tp,
                                        DType dtype);

// Synthetic weights filled on the device (no host copies): uniform(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) projections, so activations keep their scale through any depth, norm
// weights 1. Values depend on the global element position and `seed` only, so TP slices of one
// seed make up the TP=1 model.
StatusOr<CudaWeights> random_cuda_weights(const LlamaConfig& config, const TensorParallel& tp,
                                          DType dtype, uint64_t seed = 1234);

}  // namespace shardwise
