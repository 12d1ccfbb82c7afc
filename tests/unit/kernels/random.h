// Random inputs for kernel tests.
#pragma once

#include <random>
#include <vector>

namespace shardwise::testing {

inline std::vector<float> random_normal(std::size_t n, std::mt19937& rng, float mean = 0.0f,
                                        float stddev = 1.0f) {
  std::normal_distribution<float> normal(mean, stddev);
  std::vector<float> values(n);
  for (auto& value : values) value = normal(rng);
  return values;
}

}  // namespace shardwise::testing
