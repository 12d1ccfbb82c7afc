#include "shard/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace shardwise {
namespace {

bool has_penalties(const SamplingParams& params) {
  return params.repetition_penalty != 1.0f || params.frequency_penalty != 0.0f ||
         params.presence_penalty != 0.0f;
}

// Repetition penalty over prompt and output tokens; frequency and presence penalties over the
// output only (as vLLM and the OpenAI API define them).
void apply_penalties(std::vector<float>& logits, const SamplingParams& params,
                     std::span<const int32_t> prompt, std::span<const int32_t> output) {
  std::unordered_map<int32_t, int> output_counts;
  for (int32_t token : output) ++output_counts[token];
  if (params.repetition_penalty != 1.0f) {
    std::vector<bool> seen(logits.size(), false);
    for (int32_t token : prompt) seen[token] = true;
    for (const auto& [token, count] : output_counts) seen[token] = true;
    for (std::size_t token = 0; token < logits.size(); ++token) {
      if (!seen[token]) continue;
      float& logit = logits[token];
      logit = logit > 0 ? logit / params.repetition_penalty : logit * params.repetition_penalty;
    }
  }
  for (const auto& [token, count] : output_counts) {
    logits[token] -= params.frequency_penalty * count + params.presence_penalty;
  }
}

TokenLogprobs compute_logprobs(std::span<const float> logits, int32_t sampled, int top_n) {
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float logit : logits) sum += std::exp(logit - max_logit);
  const double log_normaliser = max_logit + std::log(sum);
  auto logprob = [&](int32_t token) { return static_cast<float>(logits[token] - log_normaliser); };

  TokenLogprobs result;
  result.logprob = logprob(sampled);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  const int n = std::min<int>(top_n, static_cast<int>(order.size()));
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  for (int i = 0; i < n; ++i) result.top.emplace_back(order[i], logprob(order[i]));
  return result;
}

}  // namespace

Status validate_sampling_params(const SamplingParams& params) {
  if (!(params.temperature >= 0) || !std::isfinite(params.temperature)) {
    return invalid_argument("temperature must be >= 0, got {}", params.temperature);
  }
  if (!(params.top_p > 0 && params.top_p <= 1)) {
    return invalid_argument("top_p must be in (0, 1], got {}", params.top_p);
  }
  if (params.top_k < 0) return invalid_argument("top_k must be >= 0, got {}", params.top_k);
  if (!(params.min_p >= 0 && params.min_p <= 1)) {
    return invalid_argument("min_p must be in [0, 1], got {}", params.min_p);
  }
  if (!(params.repetition_penalty > 0) || !std::isfinite(params.repetition_penalty)) {
    return invalid_argument("repetition_penalty must be > 0, got {}", params.repetition_penalty);
  }
  if (!(params.frequency_penalty >= -2 && params.frequency_penalty <= 2)) {
    return invalid_argument("frequency_penalty must be in [-2, 2], got {}",
                            params.frequency_penalty);
  }
  if (!(params.presence_penalty >= -2 && params.presence_penalty <= 2)) {
    return invalid_argument("presence_penalty must be in [-2, 2], got {}", params.presence_penalty);
  }
  if (params.max_tokens < 1) {
    return invalid_argument("max_tokens must be at least 1, got {}", params.max_tokens);
  }
  if (params.logprobs && (*params.logprobs < 0 || *params.logprobs > kMaxLogprobs)) {
    return invalid_argument("logprobs must be in [0, {}], got {}", kMaxLogprobs, *params.logprobs);
  }
  return ok_status();
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

bool device_samplable(const SamplingParams& params) {
  return !has_penalties(params) && !params.logprobs;
}

int32_t Sampler::sample(std::span<const float> logits) { return pick(logits); }

SampledToken Sampler::sample(std::span<const float> logits, std::span<const int32_t> prompt,
                             std::span<const int32_t> output) {
  SampledToken result;
  if (has_penalties(params_)) {
    std::vector<float> penalised(logits.begin(), logits.end());  // [vocab]
    apply_penalties(penalised, params_, prompt, output);
    result.token = pick(penalised);
  } else {
    result.token = pick(logits);
  }
  if (params_.logprobs) result.logprobs = compute_logprobs(logits, result.token, *params_.logprobs);
  return result;
}

int32_t Sampler::pick(std::span<const float> logits) {
  if (params_.temperature < kGreedyTemperature) return argmax(logits);
  const int vocab = static_cast<int>(logits.size());
  int keep = params_.top_k > 0 ? std::min(params_.top_k, vocab) : vocab;
  // Candidates most likely first; ties go to the lower id so the order is deterministic.
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });

  // Softmax over the kept candidates (unnormalised; probs[0] is the largest).
  std::vector<double> probs(keep);
  const double top = logits[order[0]];
  double total = 0;
  for (int i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[order[i]] - top) / params_.temperature);
    total += probs[i];
  }
  if (params_.min_p > 0.0f) {
    // probs[0] / total is the top probability, so the cut is relative to probs[0] itself.
    const double threshold = params_.min_p * probs[0];
    int kept = 1;
    while (kept < keep && probs[kept] >= threshold) ++kept;
    for (int i = kept; i < keep; ++i) total -= probs[i];
    keep = kept;
  }
  if (params_.top_p < 1.0f) {
    double cumulative = 0;
    for (int i = 0; i < keep; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  std::discrete_distribution<int> draw(probs.begin(), probs.begin() + keep);
  return order[draw(rng_)];
}

}  // namespace shardwise
