// Choosing where a model runs, for the CLI and the shard executable. This header needs no CUDA:
// a build without the CUDA backend links a version of make_cuda_replica that says so.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/mpi_session.h"
#include "common/status.h"
#include "models/model_config.h"
#include "shard/model_runner.h"

namespace shardwise {

// The --device, --dtype, --random-weights, --no-cuda-graphs and --kv-cache-gb switches.
struct DeviceOptions {
  std::string device = "cpu";      // "cpu" or "cuda"
  std::string dtype = "bf16";      // cuda: "bf16" or "f32" (f32 for exact comparisons)
  bool random_weights = false;     // cuda: synthetic weights from a config.json-only folder
  bool cuda_graphs = true;         // cuda: replay decode steps as CUDA graphs
  double kv_cache_gb = 0;          // cuda: KV cache per rank in GiB; 0: kv_cache_fraction
  double kv_cache_fraction = 0.9;  // cuda: of the GPU memory free once weights are loaded
};

// One rank's part of a model replica on a GPU: its model, KV cache and device communicator.
class DeviceReplica {
 public:
  virtual ~DeviceReplica() = default;
  virtual const LlamaConfig& config() const = 0;
  // On the group's rank 0: the runner the engine drives. With TP > 1 it sends every batch to
  // the followers (as a StepPlan over the host communicator) before running its own slice.
  virtual ModelRunner& runner() = 0;
  // On the other ranks: executes the leader's plans until it shuts them down.
  virtual Status run_follower() = 0;
};

// Loads `model_dir` (or synthetic weights) onto this process's GPU. `session` and `host_comm`
// name the tensor-parallel group (both null: a group of one). num_kv_blocks 0 sizes the cache
// from options.kv_cache_gb / kv_cache_fraction (every rank of a group agrees on the smallest).
// FAILED_PRECONDITION "no CUDA device" without a GPU; RESOURCE_EXHAUSTED when the model or the
// cache does not fit.
StatusOr<std::unique_ptr<DeviceReplica>> make_cuda_replica(
    const std::filesystem::path& model_dir, const DeviceOptions& options, const MpiSession* session,
    Communicator* host_comm, int block_size, int num_kv_blocks, std::chrono::milliseconds timeout);

// The logits at every prompt position, [prompt length, vocab], from one prefill pass on the
// first blocks of `runner`'s cache (as prompt_logits of shard/generator.h does on a LlamaModel).
StatusOr<std::vector<float>> runner_prompt_logits(ModelRunner& runner,
                                                  const std::vector<int32_t>& prompt_ids);

// Cache blocks of `block_size` tokens that hold `tokens` tokens.
inline int kv_blocks_for_tokens(int tokens, int block_size) {
  return (tokens + block_size - 1) / block_size;
}

}  // namespace shardwise
