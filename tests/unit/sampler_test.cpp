#include "shard/engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace shardwise {
namespace {

SamplingParams sampling(float temperature, int top_k, float top_p, uint64_t seed) {
  SamplingParams params;
  params.temperature = temperature;
  params.top_k = top_k;
  params.top_p = top_p;
  params.seed = seed;
  return params;
}

// Probabilities at temperature 1: softmax(log p) = p.
const std::vector<float> kLogits{std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};

std::map<int, int> histogram(Sampler& sampler, std::span<const float> logits, int draws) {
  std::map<int, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits)];
  return counts;
}

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  const std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(argmax(logits), 1);
  Sampler greedy(SamplingParams{});
  EXPECT_EQ(greedy.sample(logits), 1);
}

TEST(Sampler, TemperaturesBelowTheGreedyThresholdAreGreedy) {
  // Two tied maxima: sampling at any temperature could pick id 3; greedy always picks id 1.
  const std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f};
  for (float t : {1e-30f, 1e-40f, 0.5f * kGreedyTemperature}) {
    Sampler tiny(sampling(t, 0, 1.0f, 3));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(tiny.sample(logits), 1) << "temperature " << t;
  }
  Sampler warm(sampling(1.0f, 0, 1.0f, 3));
  EXPECT_EQ(histogram(warm, logits, 400).count(3), 1u) << "the tie is drawn at temperature 1";
}

TEST(Sampler, SameSeedSameTokens) {
  const std::vector<float> logits{0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  Sampler a(sampling(1.0f, 0, 1.0f, 42)), b(sampling(1.0f, 0, 1.0f, 42));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(logits), b.sample(logits));
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  Sampler top_k(sampling(1.0f, 2, 1.0f, 1)), top_p(sampling(1.0f, 0, 0.75f, 2)),
      all(sampling(1.0f, 0, 1.0f, 3));
  const int draws = 20000;
  auto top_k_counts = histogram(top_k, kLogits, draws);
  auto top_p_counts = histogram(top_p, kLogits, draws);
  auto all_counts = histogram(all, kLogits, draws);
  EXPECT_EQ(top_k_counts.size(), 2u);  // only tokens 0 and 1
  EXPECT_EQ(top_p_counts.size(), 2u);  // 0.5 + 0.3 reaches 0.75
  // Renormalised 0.5 / 0.8 = 0.625; binomial std at 20000 draws is ~0.0034.
  EXPECT_NEAR(top_k_counts[0] / double(draws), 0.625, 0.02);
  EXPECT_EQ(all_counts.size(), 4u);
  EXPECT_NEAR(all_counts[3] / double(draws), 0.05, 0.01);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheTopProbability) {
  auto params = sampling(1.0f, 0, 1.0f, 4);
  params.min_p = 0.2f;  // threshold 0.2 * 0.5 = 0.1: drops only token 3 (0.05)
  Sampler min_p(params);
  const int draws = 20000;
  auto counts = histogram(min_p, kLogits, draws);
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts.count(3), 0u);
  EXPECT_NEAR(counts[2] / double(draws), 0.15 / 0.95, 0.015);

  params.min_p = 0.7f;  // threshold 0.35: only token 0 is left
  Sampler strict(params);
  EXPECT_EQ(histogram(strict, kLogits, 1000).size(), 1u);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  Sampler greedy(params);
  const std::vector<int32_t> none;
  // Token 0 (logit 3) seen in the prompt becomes 1.5 < 2: token 1 wins.
  EXPECT_EQ(
      greedy.sample(std::vector<float>{3.0f, 2.0f, -1.0f}, std::vector<int32_t>{0}, none).token, 1);
  // A negative logit seen in the output moves further down: -0.5 * 2 = -1 < -0.8.
  EXPECT_EQ(greedy.sample(std::vector<float>{-0.5f, -0.8f}, none, std::vector<int32_t>{0}).token,
            1);
}

TEST(Sampler, FrequencyAndPresencePenaltiesCountOutputTokensOnly) {
  const std::vector<float> logits{1.0f, 0.8f};
  const std::vector<int32_t> output{0, 0, 0};
  SamplingParams frequency;
  frequency.frequency_penalty = 0.1f;  // 1.0 - 3 * 0.1 = 0.7 < 0.8
  EXPECT_EQ(Sampler(frequency).sample(logits, {}, output).token, 1);
  frequency.frequency_penalty = 0.05f;  // 0.85 > 0.8
  EXPECT_EQ(Sampler(frequency).sample(logits, {}, output).token, 0);
  SamplingParams presence;
  presence.presence_penalty = 0.1f;  // once: 0.9 > 0.8
  EXPECT_EQ(Sampler(presence).sample(logits, {}, output).token, 0);
  presence.presence_penalty = 0.3f;  // 0.7 < 0.8
  EXPECT_EQ(Sampler(presence).sample(logits, {}, output).token, 1);
  // The prompt does not count.
  EXPECT_EQ(Sampler(presence).sample(logits, output, {}).token, 0);
}

TEST(Sampler, LogprobsAreTheRawLogSoftmax) {
  SamplingParams params;
  params.logprobs = 2;
  params.repetition_penalty = 10.0f;  // changes the pick, not the reported distribution
  Sampler sampler(params);
  const auto sampled = sampler.sample(kLogits, std::vector<int32_t>{0}, {});
  EXPECT_EQ(sampled.token, 1);
  ASSERT_TRUE(sampled.logprobs.has_value());
  EXPECT_NEAR(sampled.logprobs->logprob, std::log(0.3), 1e-5);
  ASSERT_EQ(sampled.logprobs->top.size(), 2u);
  EXPECT_EQ(sampled.logprobs->top[0].first, 0);
  EXPECT_NEAR(sampled.logprobs->top[0].second, std::log(0.5), 1e-5);
  EXPECT_EQ(sampled.logprobs->top[1].first, 1);
  EXPECT_FALSE(Sampler(SamplingParams{}).sample(kLogits, {}, {}).logprobs.has_value());
}

TEST(Sampler, ValidationNamesTheBadParameter) {
  auto bad = [](auto edit) {
    SamplingParams params;
    edit(params);
    return validate_sampling_params(params).message();
  };
  EXPECT_TRUE(validate_sampling_params(SamplingParams{}).ok());
  EXPECT_NE(bad([](auto& p) { p.temperature = NAN; }).find("temperature"), std::string::npos);
  EXPECT_NE(bad([](auto& p) { p.frequency_penalty = 3; }).find("frequency_penalty"),
            std::string::npos);
  EXPECT_NE(bad([](auto& p) { p.presence_penalty = -3; }).find("presence_penalty"),
            std::string::npos);
  EXPECT_NE(bad([](auto& p) { p.logprobs = -1; }).find("logprobs"), std::string::npos);
}

}  // namespace
}  // namespace shardwise
