// The --device, --dtype, --random-weights, --no-cuda-graphs and --kv-cache-gb switches of the
// commands that run a model.
#pragma once

#include <CLI/CLI.hpp>

#include "shard/device_runner.h"

namespace shardwise::cli {

inline void add_device_flags(CLI::App* command, DeviceOptions& o, bool with_device = true) {
  if (with_device) {
    command->add_option("--device", o.device, "Where the model runs: cpu, or cuda (a GPU)")
        ->capture_default_str()
        ->check(CLI::IsMember({"cpu", "cuda"}));
  }
  command->add_option("--dtype", o.dtype, "With --device cuda: compute in bf16 or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "f32"}));
  command->add_flag("--random-weights", o.random_weights,
                    "With --device cuda: synthetic weights (the model folder needs only "
                    "config.json)");
  command->add_flag_callback(
      "--no-cuda-graphs", [&o] { o.cuda_graphs = false; },
      "With --device cuda: run decode steps eagerly, not as CUDA graphs");
  command
      ->add_option("--kv-cache-gb", o.kv_cache_gb,
                   "With --device cuda: KV cache GiB per GPU (0: 90% of the memory left after "
                   "the weights)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

// --random-weights and --dtype only mean something on the GPU.
inline Status check_device_flags(const DeviceOptions& o) {
  if (o.device != "cuda" && o.random_weights) {
    return invalid_argument("--random-weights needs --device cuda");
  }
  return ok_status();
}

}  // namespace shardwise::cli
