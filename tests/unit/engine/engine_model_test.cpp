// The engine on real checkpoints (CPU, fp32): many concurrent greedy requests give exactly
// the tokens each gives alone, with or without cache pressure (preemption) and prefix caching.
#include <gtest/gtest.h>

#include <random>

#include "comm/communicator.h"
#include "shard/engine/engine.h"
#include "shard/engine/generator.h"
#include "tests/support/test_support.h"
#include "tests/unit/engine/engine_test_support.h"

namespace shardwise {
namespace {

using testing::Completion;
using testing::greedy_request;

constexpr int kBlockSize = 16;

// Prompts of different lengths (1 to ~70 tokens), random ids after BOS.
std::vector<std::vector<int32_t>> make_prompts(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> prompts(n);
  for (int i = 0; i < n; ++i) {
    prompts[i].push_back(1);
    const int length = 1 + (i * 23) % 70;
    for (int t = 1; t < length; ++t) {
      prompts[i].push_back(std::uniform_int_distribution<int32_t>(3, vocab - 1)(rng));
    }
  }
  return prompts;
}

std::vector<Request> greedy_requests(const std::vector<std::vector<int32_t>>& prompts,
                                     int max_tokens) {
  std::vector<Request> requests;
  for (const auto& prompt : prompts) {
    requests.push_back(greedy_request(prompt, max_tokens));
    requests.back().sampling.ignore_eos = true;  // every request runs its full length
  }
  return requests;
}

class EngineModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto dir = GetParam() == "stories260K" ? testing::default_model_dir()
                                                 : testing::testdata_dir() / "hf-tiny" / GetParam();
    auto model = load_llama_model(dir, comm_);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(model).value();
  }

  std::vector<Completion> run(const std::vector<Request>& requests, int num_blocks,
                              EngineOptions options, EngineStats* stats = nullptr,
                              BlockManager::Counters* counters = nullptr) {
    LocalModelRunner runner(*model_, num_blocks, kBlockSize);
    Engine engine(runner, options);
    auto out = testing::run_all(engine, requests);
    if (stats) *stats = engine.stats();
    if (counters) *counters = engine.block_manager().counters();
    EXPECT_EQ(engine.block_manager().num_free_blocks(), num_blocks);
    return out;
  }

  // Each request alone in a roomy cache.
  std::vector<Completion> run_each_alone(const std::vector<Request>& requests) {
    std::vector<Completion> out;
    for (const auto& request : requests) out.push_back(run({request}, 64, EngineOptions{})[0]);
    return out;
  }

  SoloCommunicator comm_;
  std::unique_ptr<LlamaModel> model_;
};

void expect_same_tokens(const std::vector<Completion>& actual,
                        const std::vector<Completion>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(actual[i].tokens, expected[i].tokens) << "request " << i;
    EXPECT_EQ(actual[i].final_events, 1) << "request " << i;
    EXPECT_EQ(actual[i].finish_reason, expected[i].finish_reason) << "request " << i;
  }
}

TEST_P(EngineModelTest, AloneMatchesGenerate) {
  const auto prompts = make_prompts(3, model_->config().vocab_size, 7);
  const auto alone = run_each_alone(greedy_requests(prompts, 24));
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    GenerationRequest request;
    request.prompt_ids = prompts[i];
    request.max_new_tokens = 24;
    auto generated = generate(*model_, request);
    ASSERT_TRUE(generated.ok()) << generated.status().to_string();
    EXPECT_EQ(alone[i].tokens, generated->token_ids) << "prompt " << i;
  }
}

TEST_P(EngineModelTest, ConcurrentGreedyRequestsMatchEachAlone) {
  const auto requests = greedy_requests(make_prompts(8, model_->config().vocab_size, 11), 32);
  const auto alone = run_each_alone(requests);
  EngineOptions options;
  options.scheduler.max_batch_tokens = 48;  // chunked prefill mixed with decodes
  EngineStats stats;
  expect_same_tokens(run(requests, 256, options, &stats), alone);
  EXPECT_EQ(stats.preemptions, 0);
}

TEST_P(EngineModelTest, PreemptionUnderATooSmallCacheKeepsOutputs) {
  const auto requests = greedy_requests(make_prompts(8, model_->config().vocab_size, 13), 40);
  const auto alone = run_each_alone(requests);
  for (bool prefix_caching : {false, true}) {
    EngineOptions options;
    options.enable_prefix_caching = prefix_caching;
    EngineStats stats;
    // 12 blocks of 16 = 192 slots; the requests need ~530 at once.
    expect_same_tokens(run(requests, 12, options, &stats), alone);
    EXPECT_GT(stats.preemptions, 0) << "prefix caching " << prefix_caching;
  }
}

TEST_P(EngineModelTest, SharedPrefixReusesBlocksWithSameOutput) {
  const int vocab = model_->config().vocab_size;
  const auto system = make_prompts(4, vocab, 17)[3];  // 70 tokens: 4 full blocks
  ASSERT_EQ(system.size(), 70u);
  std::vector<std::vector<int32_t>> prompts;
  for (int32_t tail : {5, 6, 7}) {
    prompts.push_back(system);
    prompts.back().insert(prompts.back().end(), {tail, tail + 1, tail + 2});
  }
  const auto requests = greedy_requests(prompts, 16);

  EngineOptions off;
  off.enable_prefix_caching = false;
  BlockManager::Counters counters_off;
  const auto without_cache = run(requests, 64, off, nullptr, &counters_off);
  EXPECT_EQ(counters_off.prefix_hit_blocks, 0);

  // One after another, so each later request finds the earlier one's blocks.
  LocalModelRunner runner(*model_, 64, kBlockSize);
  Engine engine(runner);
  std::vector<Completion> with_cache;
  for (const auto& request : requests) with_cache.push_back(testing::run_all(engine, {request})[0]);
  expect_same_tokens(with_cache, without_cache);
  const auto& counters = engine.block_manager().counters();
  EXPECT_EQ(counters.prefix_hit_blocks, 2 * 4);  // the 4 system blocks, twice
  EXPECT_EQ(counters.prefix_query_blocks, 3 * 4);
  EXPECT_EQ(engine.stats().scheduled_tokens, 73 + 2 * 9 + 3 * 15);
}

TEST_P(EngineModelTest, SeededSamplingIsReproducibleAndBatchInvariant) {
  const auto prompts = make_prompts(6, model_->config().vocab_size, 19);
  std::vector<Request> requests = greedy_requests(prompts, 24);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i].sampling.temperature = 1.0f;
    requests[i].sampling.top_p = 0.95f;
    requests[i].sampling.seed = 100 + i;
  }
  const auto alone = run_each_alone(requests);
  expect_same_tokens(run(requests, 256, EngineOptions{}), alone);
  expect_same_tokens(run(requests, 12, EngineOptions{}), alone);  // with preemption

  for (auto& request : requests) request.sampling.seed += 1000;
  const auto reseeded = run(requests, 256, EngineOptions{});
  int differing = 0;
  for (std::size_t i = 0; i < requests.size(); ++i)
    differing += reseeded[i].tokens != alone[i].tokens;
  EXPECT_GT(differing, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, EngineModelTest,
                         ::testing::Values("stories260K", "tiny-llama-gqa-f32",
                                           "tiny-llama3-rope-scaled-f32"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace shardwise
