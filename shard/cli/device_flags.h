// The --device, --dtype, --random-weights, --no-cuda-graphs, --kv-cache-gb, --weight-dtype and
// --kv-cache-dtype switches of the commands that run a model (they fill the DeviceOptions of
// shard/runner/replica.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "shard/runner/replica.h"

namespace shardwise::cli {

inline void add_device_flags(CLI::App* command, DeviceOptions& o) {
  // Kept as the name given (not transformed to the enum), so --print-config writes "cpu".
  command
      ->add_option_function<std::string>(
          "--device",
          [&o](const std::string& name) {
            o.device = name == "cuda" ? Device::kCuda : Device::kCpu;
          },
          "Where the model runs: cpu, or cuda (a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->default_str("cpu");
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
  command
      ->add_option("--weight-dtype", o.weight_dtype,
                   "On the CPU: weights as stored (auto: read in place), or converted at load to "
                   "f32, f16, bf16 or int8 (symmetric, per block of 32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "f32", "f16", "bf16", "int8"}));
  command->add_option("--kv-cache-dtype", o.kv_cache_dtype, "On the CPU: KV cache in f32 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
}

}  // namespace shardwise::cli
