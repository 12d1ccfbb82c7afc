#include "shard/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace shardwise {

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (params_.temperature <= 0.0f) return argmax(logits);
  const int vocab = static_cast<int>(logits.size());
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int keep = params_.top_k > 0 ? std::min(params_.top_k, vocab) : vocab;

  // Softmax over the kept candidates, most likely first.
  std::vector<double> probs(keep);
  const double top = logits[order[0]];
  double total = 0;
  for (int i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[order[i]] - top) / params_.temperature);
    total += probs[i];
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
  std::discrete_distribution<int> pick(probs.begin(), probs.begin() + keep);
  return order[pick(rng_)];
}

}  // namespace shardwise
