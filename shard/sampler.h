// Picks the next token from a row of logits: greedy at temperature 0, otherwise seeded
// sampling from the temperature-scaled distribution, optionally cut to top-k / top-p.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace shardwise {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax); e.g. 0.8
  int top_k = 0;             // 0: off; e.g. 40 keeps the 40 likeliest tokens
  float top_p = 1.0f;        // 1: off; e.g. 0.9 keeps the smallest set holding 90% probability
  uint64_t seed = 0;         // same seed and inputs: same tokens
};

// The index of the largest logit; the lowest index wins a tie (as torch.argmax).
int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  int32_t sample(std::span<const float> logits);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace shardwise
