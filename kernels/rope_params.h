// Rotary-embedding parameters shared by the CPU and CUDA kernels (filled from config.json).
#pragma once

namespace shardwise {

enum class RopeType { kDefault, kLlama3 };

struct RopeParams {
  RopeType type = RopeType::kDefault;
  float theta = 10000.0f;  // base, e.g. 500000 for Llama 3
  // llama3 scaling only (rope_scaling / rope_parameters of Llama 3.1+):
  float factor = 8.0f;                          // e.g. 8
  float low_freq_factor = 1.0f;                 // e.g. 1
  float high_freq_factor = 4.0f;                // e.g. 4
  int original_max_position_embeddings = 8192;  // e.g. 8192
};

}  // namespace shardwise
