// Thousands of random arrivals, cancellations and finishes through the engine on the fake
// runner, with a cache small enough to force preemption and prompts sharing prefixes. After
// every step the block accounting must balance; at the end every request has exactly one
// final event and every finished one the exact greedy output.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "shard/engine/engine.h"
#include "tests/unit/engine/engine_test_support.h"
#include "tests/unit/engine/fake_model_runner.h"

namespace shardwise {
namespace {

using testing::Completion;

constexpr int kVocab = 16;
constexpr int kBlockSize = 4;
constexpr int kNumBlocks = 40;
constexpr int kContext = 128;

// Each block's reference count equals the number of running sequences whose table holds it;
// waiting sequences hold none; the free count is the number of unreferenced blocks.
void expect_blocks_balance(const Engine& engine) {
  const BlockManager& blocks = engine.block_manager();
  std::vector<int> holders(blocks.num_blocks(), 0);
  for (const Sequence* seq : engine.scheduler().running()) {
    ASSERT_LE(static_cast<int>(seq->block_table.size()) * kBlockSize,
              seq->length() + kBlockSize - 1);
    for (int32_t block : seq->block_table) ++holders[block];
  }
  for (const Sequence* seq : engine.scheduler().waiting()) {
    ASSERT_TRUE(seq->block_table.empty());
    ASSERT_EQ(seq->num_computed_tokens, 0);
  }
  int unreferenced = 0;
  for (int32_t block = 0; block < blocks.num_blocks(); ++block) {
    ASSERT_EQ(blocks.ref_count(block), holders[block]) << "block " << block;
    unreferenced += holders[block] == 0;
  }
  ASSERT_EQ(blocks.num_free_blocks(), unreferenced);
}

struct Submitted {
  std::vector<int32_t> prompt;
  int max_tokens = 0;
  std::vector<int32_t> stop_ids;  // what ends generation, EOS included unless ignored
  bool cancelled = false;
};

class EnginePropertyTest : public ::testing::TestWithParam<bool> {};

TEST_P(EnginePropertyTest, RandomArrivalsCancellationsAndFinishes) {
  const bool prefix_caching = GetParam();
  testing::FakeModelRunner runner(kNumBlocks, kBlockSize, kVocab, kContext);
  EngineOptions options;
  options.enable_prefix_caching = prefix_caching;
  options.scheduler.max_batch_tokens = 24;
  options.scheduler.max_num_seqs = 12;
  Engine engine(runner, options);

  std::mt19937 rng(1234);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // A few shared system prompts, so prefix blocks are reused while others are evicted.
  std::vector<std::vector<int32_t>> prefixes(4);
  for (auto& prefix : prefixes) {
    for (int i = uniform(2, 14); i > 0; --i) prefix.push_back(uniform(0, kVocab - 1));
  }

  constexpr int kRequests = 3000;
  std::map<RequestId, Submitted> submitted;
  std::map<RequestId, Completion> completions;
  std::vector<RequestId> live;
  int arrivals = 0, steps = 0;
  while (arrivals < kRequests || engine.has_unfinished()) {
    for (int n = uniform(0, 3); n > 0 && arrivals < kRequests; --n, ++arrivals) {
      Submitted s;
      if (uniform(0, 2) > 0) s.prompt = prefixes[uniform(0, 3)];
      for (int i = uniform(s.prompt.empty() ? 1 : 0, 20); i > 0; --i) {
        s.prompt.push_back(uniform(0, kVocab - 1));
      }
      s.max_tokens = uniform(1, 24);
      Request request = testing::greedy_request(s.prompt, s.max_tokens);
      if (uniform(0, 3) == 0) request.sampling.stop_token_ids = {uniform(0, kVocab - 1)};
      request.sampling.ignore_eos = uniform(0, 1) == 0;
      s.stop_ids = request.sampling.stop_token_ids;
      if (!request.sampling.ignore_eos) s.stop_ids.push_back(2);
      request.on_event = [&](const StreamEvent& event) {
        testing::collect_into(completions[event.request_id])(event);
      };
      auto id = engine.add_request(std::move(request));
      ASSERT_TRUE(id.ok()) << id.status().to_string();
      submitted.emplace(*id, s);
      live.push_back(*id);
    }
    if (!live.empty() && uniform(0, 9) == 0) {
      const std::size_t victim = uniform(0, static_cast<int>(live.size()) - 1);
      if (engine.cancel(live[victim])) submitted[live[victim]].cancelled = true;
      live.erase(live.begin() + victim);
    }
    const Status status = engine.step();
    ASSERT_TRUE(status.ok()) << status.to_string();
    ++steps;
    expect_blocks_balance(engine);
    if (::testing::Test::HasFatalFailure()) return;
  }

  ASSERT_EQ(completions.size(), submitted.size());
  int cancelled = 0;
  for (const auto& [id, s] : submitted) {
    const Completion& c = completions[id];
    ASSERT_EQ(c.final_events, 1) << "request " << id;
    ASSERT_EQ(c.events_after_final, 0) << "request " << id;
    const auto expected = testing::fake_greedy(s.prompt, s.max_tokens, s.stop_ids, kVocab);
    if (*c.finish_reason == FinishReason::kCancelled) {
      ASSERT_TRUE(s.cancelled);
      ++cancelled;
      ASSERT_LE(c.tokens.size(), expected.size());
      ASSERT_TRUE(std::equal(c.tokens.begin(), c.tokens.end(), expected.begin())) << id;
      continue;
    }
    ASSERT_EQ(c.tokens, expected) << "request " << id;
    const bool stopped =
        std::find(s.stop_ids.begin(), s.stop_ids.end(), c.tokens.back()) != s.stop_ids.end();
    ASSERT_EQ(*c.finish_reason, stopped ? FinishReason::kStop : FinishReason::kLength) << id;
  }
  const BlockManager& blocks = engine.block_manager();
  EXPECT_EQ(blocks.num_free_blocks(), kNumBlocks);
  EXPECT_GT(cancelled, 50);
  EXPECT_GT(engine.stats().preemptions, 10);
  if (prefix_caching) {
    EXPECT_GT(blocks.counters().prefix_hit_blocks, 100);
    EXPECT_GT(blocks.counters().evictions, 10);
  } else {
    EXPECT_EQ(blocks.counters().prefix_hit_blocks, 0);
  }
  RecordProperty("steps", steps);
}

INSTANTIATE_TEST_SUITE_P(PrefixCaching, EnginePropertyTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "On" : "Off"; });

}  // namespace
}  // namespace shardwise
