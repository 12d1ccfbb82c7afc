#include "shard/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace shardwise {
namespace {

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  const std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(argmax(logits), 1);
  Sampler greedy(SamplingParams{});
  EXPECT_EQ(greedy.sample(logits), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  const std::vector<float> logits{0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  SamplingParams params{1.0f, 0, 1.0f, 42};
  Sampler a(params), b(params);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(logits), b.sample(logits));
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  // Probabilities at temperature 1: softmax(log p) = p.
  const std::vector<float> logits{std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  std::map<int, int> top_k_counts, top_p_counts, all_counts;
  Sampler top_k({1.0f, 2, 1.0f, 1}), top_p({1.0f, 0, 0.75f, 2}), all({1.0f, 0, 1.0f, 3});
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    ++top_k_counts[top_k.sample(logits)];
    ++top_p_counts[top_p.sample(logits)];
    ++all_counts[all.sample(logits)];
  }
  EXPECT_EQ(top_k_counts.size(), 2u);  // only tokens 0 and 1
  EXPECT_EQ(top_p_counts.size(), 2u);  // 0.5 + 0.3 reaches 0.75
  // Renormalised 0.5 / 0.8 = 0.625; binomial std at 20000 draws is ~0.0034.
  EXPECT_NEAR(top_k_counts[0] / double(draws), 0.625, 0.02);
  EXPECT_EQ(all_counts.size(), 4u);
  EXPECT_NEAR(all_counts[3] / double(draws), 0.05, 0.01);
}

}  // namespace
}  // namespace shardwise
