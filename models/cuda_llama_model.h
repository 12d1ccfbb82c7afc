// The Llama forward pass on the GPU, for one tensor-parallel rank: the same layers as
// LlamaModel (models/llama_model.h) on device buffers, with kernels/cuda/ and cuBLASLt.
// Reading forward() you can see every collective: one all-reduce after o_proj and one after
// down_proj per layer, one all-gather of the logits.
//
// Decode steps (one query token per sequence) can run as CUDA graphs, one per batch-size
// bucket (1, 2, 4, ..., max_graph_batch) and context bucket (512, 1024, ..., the window), rows
// past the batch padded with cache slot -1 and context 0; every per-step input is copied into
// fixed device buffers before a replay.
#pragma once

#include <cuda_runtime.h>

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "comm/device_communicator.h"
#include "common/status.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/sampling.h"
#include "models/cuda_weights.h"
#include "models/forward_batch.h"
#include "models/model_config.h"

namespace shardwise {

struct CudaModelOptions {
  DType dtype = DType::kBF16;  // weights, activations and KV cache; F32 for exact comparisons
  // Replay decode steps as CUDA graphs. Only with a communicator whose collectives can be
  // captured (the group of one, NCCL); the caller knows which it made.
  bool cuda_graphs = true;
  int max_graph_batch = 256;    // largest captured decode batch; larger ones run eagerly
  bool random_weights = false;  // synthetic weights (config.json only, no safetensors)
  uint64_t seed = 1234;         // of the synthetic weights
};

// The paged KV cache of one rank on the device: per layer, K and V blocks in the layout of
// kernels/cuda/kv_cache_write.h, in the model's dtype, holding only this rank's KV heads.
class CudaKvCache {
 public:
  static StatusOr<CudaKvCache> make(int n_layers, int num_blocks, int block_size, int n_kv_heads,
                                    int head_dim, DType dtype);
  // Bytes one block takes over all layers, K and V.
  static std::size_t block_bytes(int n_layers, int block_size, int n_kv_heads, int head_dim,
                                 DType dtype);

  void* k(int layer) const;  // [num_blocks, block_size, n_kv_heads, head_dim]
  void* v(int layer) const;  // [num_blocks, block_size, n_kv_heads, head_dim]
  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  int num_slots() const { return num_blocks_ * block_size_; }
  // Unique per cache made in this process (captured graphs hold its addresses).
  uint64_t id() const { return id_; }

 private:
  uint64_t id_ = 0;
  int num_blocks_ = 0;
  int block_size_ = 0;
  std::size_t layer_bytes_ = 0;  // of K (or V) of one layer
  DeviceAllocation storage_;     // [n_layers][K, V][num_blocks, block_size, n_kv, head_dim]
};

class CudaLlamaModel {
 public:
  // `comm` is this rank's tensor-parallel group; it must outlive the model. The model runs on
  // the current CUDA device (from whichever thread later calls it), on a stream of its own.
  CudaLlamaModel(LlamaConfig config, CudaWeights weights, DeviceCommunicator& comm,
                 CudaModelOptions options);
  ~CudaLlamaModel();
  CudaLlamaModel(const CudaLlamaModel&) = delete;
  CudaLlamaModel& operator=(const CudaLlamaModel&) = delete;

  const LlamaConfig& config() const { return config_; }
  const CudaModelOptions& options() const { return options_; }
  const AttentionPartition& attention_partition() const { return weights_.attention; }
  std::size_t weight_bytes() const { return weights_.bytes(); }
  cudaStream_t stream() const { return stream_; }

  StatusOr<CudaKvCache> make_kv_cache(int num_blocks, int block_size) const;
  std::size_t kv_block_bytes(int block_size) const;

  // The checks of LlamaModel::validate, plus: the tokens of each sequence are contiguous in
  // the batch at consecutive positions (the attention kernels take each sequence's queries as
  // one run of rows).
  Status validate(const ForwardBatch& batch, const CudaKvCache& cache) const;

  // Writes the batch's K/V into `cache` and returns the logits of batch.logit_rows over the
  // full vocabulary, [n_rows, vocab_size], on the host.
  StatusOr<std::vector<float>> forward(const ForwardBatch& batch, CudaKvCache& cache);
  // As forward(), then samples one token per logit row on the device (rows[i] for
  // batch.logit_rows[i]) and copies only the token ids back.
  StatusOr<std::vector<int32_t>> forward_and_sample(const ForwardBatch& batch, CudaKvCache& cache,
                                                    std::span<const cuda::SamplingRow> rows);
  // As forward(), but the logits stay on the device: a tensor-parallel follower's step, which
  // takes part in every collective and samples nothing. Returns when the step has finished.
  Status forward_discarding_logits(const ForwardBatch& batch, CudaKvCache& cache);

  // Decode steps replayed from a graph so far (tests, benchmarks).
  long graph_replays() const { return graph_replays_; }

 private:
  struct Buffers;
  struct StepInputs;
  struct Graph;

  // Runs the batch on the device; returns the device logits [n_rows, vocab] (F32) of the
  // batch's logit rows, valid until the next call, ordered on stream_.
  StatusOr<const float*> run(const ForwardBatch& batch, CudaKvCache& cache);
  void ensure_capacity(int n_tokens, int n_rows, int n_seqs, int table_ints, int max_context);
  void upload_inputs(const StepInputs& inputs);
  // The whole forward pass on already uploaded inputs; logits of `n_rows` rows gathered by
  // the device array logit_rows (nullptr: rows 0..n_rows-1) end in buffers' logits.
  void forward_layers(int n_tokens, int n_seqs, int max_query_len, int max_context,
                      int table_stride, bool decode, int n_rows, const int32_t* logit_rows,
                      CudaKvCache& cache);
  void attention(int layer, int n_tokens, int n_seqs, int max_query_len, int max_context,
                 int table_stride, bool decode, CudaKvCache& cache);
  void mlp(int layer, int n_tokens);
  void add_and_norm(const void* weight, int n_tokens, bool first);
  void lm_head(int n_rows, const int32_t* logit_rows);
  bool graph_eligible(const ForwardBatch& batch, const CudaKvCache& cache) const;
  StatusOr<const float*> run_decode_graph(const ForwardBatch& batch, CudaKvCache& cache);

  LlamaConfig config_;
  CudaWeights weights_;
  DeviceCommunicator& comm_;
  CudaModelOptions options_;
  int device_ = 0;  // the CUDA device current at construction; every call runs there
  cudaStream_t stream_ = nullptr;
  cuda::Gemm gemm_;
  DeviceAllocation inv_freq_;  // [head_dim / 2] F32
  std::unique_ptr<Buffers> buffers_;
  // By (batch bucket, context bucket).
  std::map<std::pair<int, int>, std::unique_ptr<Graph>> graphs_;
  uint64_t graph_cache_ = 0;                      // id of the cache the graphs were captured with
  long graph_replays_ = 0;
};

// Loads config.json and this rank's weights (or fills synthetic ones) onto the current device.
// Fails with a clear message when there is no GPU or the weights do not fit.
StatusOr<std::unique_ptr<CudaLlamaModel>> load_cuda_llama_model(
    const std::filesystem::path& model_dir, DeviceCommunicator& comm,
    const CudaModelOptions& options);

}  // namespace shardwise
