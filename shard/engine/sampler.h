// Picks the next token from a row of logits: greedy at temperature 0, otherwise seeded
// sampling from the temperature-scaled distribution cut to top-k / min-p / top-p, after the
// repetition, frequency and presence penalties. Optionally reports log-probabilities.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "common/status.h"

namespace shardwise {

// Per-request sampling and stopping parameters (OpenAI / vLLM names and meanings).
struct SamplingParams {
  float temperature = 0.0f;  // 0 (or below kGreedyTemperature): greedy (argmax); e.g. 0.8
  int top_k = 0;             // 0: off; e.g. 40 keeps the 40 likeliest tokens
  float top_p = 1.0f;        // 1: off; e.g. 0.9 keeps the smallest set holding 90% probability
  uint64_t seed = 0;         // same seed and inputs: same tokens
  float min_p = 0.0f;        // 0: off; e.g. 0.05 drops tokens under 5% of the top probability
  // 1: off; e.g. 1.2 divides positive (multiplies negative) logits of every token seen in the
  // prompt or the output (CTRL / Hugging Face).
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;  // 0: off; e.g. 0.5 subtracts 0.5 per earlier output occurrence
  float presence_penalty = 0.0f;   // 0: off; e.g. 0.5 subtracts 0.5 once if in the output at all
  int max_tokens = 16;             // >= 1: new tokens at most
  std::vector<int32_t> stop_token_ids;  // e.g. {13}: also stop after these (besides EOS)
  bool ignore_eos = false;              // true: the model's EOS ids do not stop generation
  // nullopt: no log-probabilities; n: the sampled token's and the n likeliest tokens' (<= 20).
  std::optional<int> logprobs;
};

inline constexpr int kMaxLogprobs = 20;
// Temperatures above 0 but below this sample greedily, as vLLM does: on the GPU 1 / temperature
// overflows to infinity for the smallest of them, and none of them differs from greedy anyway.
inline constexpr float kGreedyTemperature = 1e-5f;

// Rejects parameters outside their domains with INVALID_ARGUMENT naming the parameter.
Status validate_sampling_params(const SamplingParams& params);

// True when a sampler on the device can draw for these parameters: no penalties (they need the
// sequence's tokens) and no log-probabilities (they need the whole distribution on the host).
bool device_samplable(const SamplingParams& params);

// Log-probabilities of the model's raw distribution (before penalties and temperature).
struct TokenLogprobs {
  float logprob = 0;                           // of the sampled token
  std::vector<std::pair<int32_t, float>> top;  // [n] (token, logprob), likeliest first
};

struct SampledToken {
  int32_t token = 0;
  std::optional<TokenLogprobs> logprobs;  // set when params.logprobs is
};

// The index of the largest logit; the lowest index wins a tie (as torch.argmax).
int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

  // No penalties (they need the sequence's tokens) and no log-probabilities.
  int32_t sample(std::span<const float> logits);
  // `prompt` and `output` are the sequence's tokens so far, for the penalties.
  SampledToken sample(std::span<const float> logits, std::span<const int32_t> prompt,
                      std::span<const int32_t> output);

 private:
  int32_t pick(std::span<const float> logits);

  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace shardwise
