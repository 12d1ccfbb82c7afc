// One rank's part of a model replica, made in one place for every caller (the shardwise CLI,
// shardwise-shard, the benchmarks): which device it runs on, which communicator carries its
// tensor-parallel group, and whether this rank leads (drives the engine) or follows (executes
// the leader's StepPlans). This header needs no CUDA: a build without the CUDA backend links a
// make_replica whose Device::kCuda says so.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "comm/communicator.h"
#include "comm/mpi_session.h"
#include "common/status.h"
#include "models/model_config.h"
#include "shard/runner/model_runner.h"

namespace shardwise {

enum class Device { kCpu, kCuda };

// "cpu", "cuda": the names the command lines use.
std::string_view device_name(Device device);
std::optional<Device> parse_device(std::string_view name);

// The --device, --dtype, --random-weights, --no-cuda-graphs, --kv-cache-gb, --weight-dtype and
// --kv-cache-dtype switches.
struct DeviceOptions {
  Device device = Device::kCpu;
  std::string dtype = "bf16";      // cuda: "bf16" or "f32" (f32 for exact comparisons)
  bool random_weights = false;     // cuda: synthetic weights from a config.json-only folder
  bool cuda_graphs = true;         // cuda: replay decode steps as CUDA graphs
  double kv_cache_gb = 0;          // cuda: KV cache per rank in GiB; 0: kv_cache_fraction
  double kv_cache_fraction = 0.9;  // cuda: of the GPU memory free once weights are loaded
  // cpu: weights in memory as stored ("auto": f32 stays f32, bf16 bf16, read in place from the
  // mmapped checkpoint) or converted at load: "f32", "f16", "bf16", "int8" (quantised).
  std::string weight_dtype = "auto";
  std::string kv_cache_dtype = "f32";  // cpu: "f32" or "bf16"
};

// --random-weights and --dtype only mean something on the GPU, --weight-dtype and
// --kv-cache-dtype only on the CPU; their values must parse.
Status check_device_options(const DeviceOptions& options);

struct ReplicaOptions {
  std::filesystem::path model_dir;  // a Hugging Face folder, e.g. assets/models/stories260K
  DeviceOptions device;
  int block_size = 16;  // tokens per KV cache block
  // KV cache blocks per rank. 0 picks them: on the GPU from the memory budget (kv_cache_gb or
  // kv_cache_fraction, every rank of a group agreeing on the smallest); on the CPU enough for
  // `sequences` full context windows.
  int num_kv_blocks = 0;
  int sequences = 1;
};

// The tensor-parallel group a replica spans. Both null: a group of one in this process.
struct ReplicaGroup {
  const MpiSession* session = nullptr;  // picks this rank's GPU
  Communicator* comm = nullptr;         // the group's host communicator; carries the StepPlans
  std::chrono::milliseconds collective_timeout{60000};
};

class Replica {
 public:
  virtual ~Replica() = default;
  virtual const LlamaConfig& config() const = 0;
  // On the group's rank 0: the runner the engine drives. With TP > 1 it sends every batch to
  // the followers (as a StepPlan over the host communicator) before running its own slice.
  virtual ModelRunner& runner() = 0;
  // On the other ranks: executes the leader's plans until it shuts them down.
  virtual Status run_follower() = 0;
};

// Loads `options.model_dir` (or synthetic weights) onto this rank's device. Collective over
// `group`: when one rank fails, every rank returns an error. NOT_FOUND / INVALID_ARGUMENT for a
// broken model folder; FAILED_PRECONDITION for --device cuda without a GPU (or without CUDA in
// the build); RESOURCE_EXHAUSTED when the model or the cache does not fit.
StatusOr<std::unique_ptr<Replica>> make_replica(const ReplicaOptions& options,
                                                const ReplicaGroup& group = {});

// make_replica for Device::kCuda (shard/runner/cuda_model_runner.cpp, or the stub of a build
// without CUDA).
StatusOr<std::unique_ptr<Replica>> make_cuda_replica(const ReplicaOptions& options,
                                                     const ReplicaGroup& group);

}  // namespace shardwise
