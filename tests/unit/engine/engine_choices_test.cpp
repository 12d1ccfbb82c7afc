// The engine features behind the OpenAI API on the fake runner: a logit bias, prompt
// log-probabilities, embedding requests, and requests sharing a prompt prefilling it once.
#include <gtest/gtest.h>

#include <cmath>

#include "shard/engine/engine.h"
#include "tests/unit/engine/engine_test_support.h"
#include "tests/unit/engine/fake_model_runner.h"

namespace shardwise {
namespace {

using testing::fake_greedy;
using testing::fake_logits;
using testing::FakeModelRunner;
using testing::greedy_request;
using testing::kFakeHidden;

constexpr int kVocab = 32;

std::vector<int32_t> counting_prompt(int length) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < length; ++i) prompt.push_back(3 + i % 20);
  return prompt;
}

TEST(EngineLogitBias, BansTheGreedyTokenAndForcesAnother) {
  const std::vector<int32_t> prompt{5, 6, 7};
  const int32_t greedy = fake_greedy(prompt, 1, {}, kVocab)[0];
  auto run = [&](std::vector<std::pair<int32_t, float>> bias, float temperature) {
    FakeModelRunner runner(32, 4, kVocab, 256);
    Engine engine(runner);
    auto request = greedy_request(prompt, 6);
    request.sampling.ignore_eos = true;
    request.sampling.temperature = temperature;
    request.sampling.seed = 11;
    request.sampling.logit_bias = std::move(bias);
    return testing::run_all(engine, {request})[0].tokens;
  };
  const auto banned = run({{greedy, -100.0f}}, 0.0f);
  EXPECT_NE(banned[0], greedy);
  EXPECT_EQ(std::count(banned.begin(), banned.end(), greedy), 0);
  // +100 dwarfs the fake's logits (0..10): sampled at temperature 1, the token always wins.
  const auto forced = run({{17, 100.0f}}, 1.0f);
  EXPECT_EQ(forced, std::vector<int32_t>(6, 17));
}

TEST(EnginePromptLogprobs, EveryPromptTokenUnderChunkingAndAWarmPrefixCache) {
  const std::vector<int32_t> prompt = counting_prompt(11);
  FakeModelRunner runner(64, 4, kVocab, 256);
  EngineOptions options;
  options.scheduler.max_batch_tokens = 4;  // the prompt runs in three chunks
  Engine engine(runner, options);
  // The same prompt first, so its blocks are cached: prompt_logprobs must not use them.
  testing::run_all(engine, {greedy_request(prompt, 2)});
  auto request = greedy_request(prompt, 2);
  request.sampling.prompt_logprobs = 2;
  std::vector<StreamEvent> events;
  request.on_event = [&](const StreamEvent& e) { events.push_back(e); };
  ASSERT_TRUE(engine.add_request(std::move(request)).ok());
  while (engine.has_unfinished()) ASSERT_TRUE(engine.step().ok());
  ASSERT_EQ(events.size(), 2u);
  ASSERT_EQ(events[0].prompt_logprobs.size(), prompt.size() - 1);
  EXPECT_TRUE(events[1].prompt_logprobs.empty());
  for (std::size_t p = 0; p + 1 < prompt.size(); ++p) {
    const auto logits = fake_logits(std::span(prompt).first(p + 1), kVocab);
    const TokenLogprobs expected = token_logprobs(logits, prompt[p + 1], 2);
    EXPECT_FLOAT_EQ(events[0].prompt_logprobs[p].logprob, expected.logprob) << p;
    EXPECT_EQ(events[0].prompt_logprobs[p].top, expected.top) << p;
  }
  EXPECT_EQ(events[0].token, fake_greedy(prompt, 1, {}, kVocab)[0]);
}

std::vector<float> expected_embedding(const std::vector<int32_t>& prompt, Pooling pooling) {
  std::vector<double> sum(kFakeHidden, 0.0);
  const std::size_t first = pooling == Pooling::kMean ? 0 : prompt.size() - 1;
  for (std::size_t p = first; p < prompt.size(); ++p) {
    const auto hidden = fake_logits(std::span(prompt).first(p + 1), kFakeHidden);
    for (int i = 0; i < kFakeHidden; ++i) sum[i] += hidden[i];
  }
  std::vector<float> out;
  for (double s : sum) out.push_back(static_cast<float>(s / (prompt.size() - first)));
  return out;
}

TEST(EngineEmbeddings, MeanAndLastPoolingBesideGeneration) {
  for (bool device : {false, true}) {
    FakeModelRunner runner(64, 4, kVocab, 64);
    runner.set_samples_on_device(device);
    EngineOptions options;
    options.scheduler.max_batch_tokens = 5;
    Engine engine(runner, options);
    const std::vector<int32_t> long_prompt = counting_prompt(13), short_prompt{4, 9};
    std::vector<std::vector<StreamEvent>> events(4);
    std::vector<Request> requests(4);
    requests[0] = greedy_request(long_prompt, 3);  // generation in the same steps
    requests[0].sampling.ignore_eos = true;
    for (int i = 1; i < 4; ++i) {
      requests[i].prompt_ids = i == 3 ? short_prompt : long_prompt;
      requests[i].pooling = i == 2 ? Pooling::kLast : Pooling::kMean;
      // An embedding of the whole context window is allowed: nothing is generated after it.
      requests[i].sampling.max_tokens = 1000;
    }
    for (int i = 0; i < 4; ++i) {
      requests[i].on_event = [&events, i](const StreamEvent& e) { events[i].push_back(e); };
      ASSERT_TRUE(engine.add_request(std::move(requests[i])).ok());
    }
    while (engine.has_unfinished()) ASSERT_TRUE(engine.step().ok());
    EXPECT_EQ(events[0].size(), 3u);
    EXPECT_EQ(events[0].back().finish_reason, FinishReason::kLength);
    for (int i = 1; i < 4; ++i) {
      ASSERT_EQ(events[i].size(), 1u) << i;
      EXPECT_EQ(events[i][0].finish_reason, FinishReason::kStop);
      EXPECT_FALSE(events[i][0].token.has_value());
      const auto expected = expected_embedding(i == 3 ? short_prompt : long_prompt,
                                               i == 2 ? Pooling::kLast : Pooling::kMean);
      ASSERT_EQ(events[i][0].embedding.size(), expected.size());
      for (int d = 0; d < kFakeHidden; ++d) {
        EXPECT_NEAR(events[i][0].embedding[d], expected[d], 1e-5) << i << " " << d;
      }
    }
    EXPECT_EQ(engine.stats().device_sampled_steps > 0, device)
        << "the steps after the embeddings may sample on the device";
    EXPECT_EQ(engine.block_manager().num_free_blocks(), 64);
  }
}

TEST(EngineEmbeddings, RefusesAnInputLongerThanTheContext) {
  FakeModelRunner runner(64, 4, kVocab, 16);
  Engine engine(runner);
  Request request;
  request.prompt_ids = counting_prompt(17);
  request.pooling = Pooling::kMean;
  auto id = engine.add_request(std::move(request));
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("context window of 16"), std::string::npos);
}

// The choices of one request arrive together with the same prompt: the first prefills it, the
// others wait one step and take its blocks from the prefix cache.
TEST(EngineSharedPrompt, FourChoicesCostOnePrefill) {
  const std::vector<int32_t> prompt = counting_prompt(40);
  for (bool caching : {true, false}) {
    FakeModelRunner runner(128, 4, kVocab, 256);
    EngineOptions options;
    options.enable_prefix_caching = caching;
    Engine engine(runner, options);
    std::vector<Request> choices(4, greedy_request(prompt, 5));
    for (int i = 0; i < 4; ++i) {
      choices[i].sampling.temperature = 1.0f;
      choices[i].sampling.seed = 100 + i;
      choices[i].sampling.ignore_eos = true;
    }
    auto out = testing::run_all(engine, choices);
    for (const auto& c : out) EXPECT_EQ(c.tokens.size(), 5u);
    const EngineStats& stats = engine.stats();
    if (caching) {
      // 39 / 4 = 9 full blocks come from the cache; each later choice computes 4 tokens.
      EXPECT_EQ(stats.prefill_tokens, 40 + 3 * 4);
      EXPECT_EQ(engine.block_manager().counters().prefix_hit_blocks, 3 * 9);
      EXPECT_EQ(stats.steps, 6);  // the prefill, then the later choices one step behind
    } else {
      EXPECT_EQ(stats.prefill_tokens, 4 * 40);
      EXPECT_EQ(stats.steps, 5);
    }
    // Each choice's tokens are those it draws alone with its seed.
    for (int i = 0; i < 4; ++i) {
      FakeModelRunner alone_runner(128, 4, kVocab, 256);
      Engine alone(alone_runner);
      EXPECT_EQ(testing::run_all(alone, {choices[i]})[0].tokens, out[i].tokens) << i;
    }
  }
}

TEST(EngineSharedPrompt, DifferentPromptsAreAdmittedTogether) {
  FakeModelRunner runner(128, 4, kVocab, 256);
  Engine engine(runner);
  auto a = greedy_request(counting_prompt(12), 2);
  auto b = greedy_request({9, 9, 9, 9, 9, 9, 9, 9, 9}, 2);
  a.sampling.ignore_eos = b.sampling.ignore_eos = true;
  testing::run_all(engine, {a, b});
  EXPECT_EQ(engine.stats().steps, 2);
  EXPECT_EQ(engine.stats().prefill_tokens, 12 + 9);
}

}  // namespace
}  // namespace shardwise
