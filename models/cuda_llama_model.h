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
#include <memory>
#include <span>
#include <vector>

#include "comm/device_communicator.h"
#include "common/status.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/sampling.h"
#include "models/cuda_decode_graphs.h"
#include "models/cuda_kv_cache.h"
#include "models/cuda_step_buffers.h"
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

  // validate_batch (models/forward_batch.h), plus: the tokens of each sequence are contiguous
  // in the batch at consecutive positions (the attention kernels take each sequence's queries
  // as one run of rows).
  Status validate(const ForwardBatch& batch, const CudaKvCache& cache) const;

  // Grows the step buffers when `batch` needs more than the steps before it. Returns whether
  // they grew, or RESOURCE_EXHAUSTED (the buffers released) when the device memory is not
  // there: the step's requests fail, the process lives. Every forward call reserves first; a
  // tensor-parallel group reserves on every rank before a step and agrees on the outcome
  // (shard/runner/tp_model_runner.h), since one rank must not run collectives alone.
  StatusOr<bool> reserve(const ForwardBatch& batch, const CudaKvCache& cache);
  // Frees the step buffers (another rank of the group could not grow its own).
  void release_step_buffers();

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
  long graph_replays() const { return graphs_.replays(); }

 private:
  // Runs the batch on the device; returns the device logits [n_rows, vocab] (F32) of the
  // batch's logit rows, valid until the next call, ordered on stream_.
  StatusOr<const float*> run(const ForwardBatch& batch, CudaKvCache& cache);
  // A batch that is not a graph step, as the attention kernels take it: runs of one
  // sequence's tokens.
  CudaStepInputs eager_inputs(const ForwardBatch& batch) const;
  StepDims graph_dims(const CudaKvCache& cache) const;
  // The whole forward pass on already uploaded inputs; logits of `n_rows` rows gathered by
  // the device array logit_rows (nullptr: rows 0..n_rows-1) end in the buffers' logits.
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
  CudaStepBuffers buffers_;
  CudaDecodeGraphs graphs_;
};

// Loads config.json and this rank's weights (or fills synthetic ones) onto the current device.
// Fails with a clear message when there is no GPU or the weights do not fit.
StatusOr<std::unique_ptr<CudaLlamaModel>> load_cuda_llama_model(
    const std::filesystem::path& model_dir, DeviceCommunicator& comm,
    const CudaModelOptions& options);

}  // namespace shardwise
