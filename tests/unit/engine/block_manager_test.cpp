#include "shard/engine/block_manager.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>

namespace shardwise {
namespace {

std::vector<int32_t> range(int first, int count) {
  std::vector<int32_t> v(count);
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(BlockManager, AllocatesEveryBlockOnceThenRunsOut) {
  BlockManager blocks(4, 16, false);
  std::set<int32_t> seen;
  for (int i = 0; i < 4; ++i) {
    auto block = blocks.allocate();
    ASSERT_TRUE(block.has_value());
    EXPECT_TRUE(seen.insert(*block).second);
    EXPECT_EQ(blocks.ref_count(*block), 1);
  }
  EXPECT_FALSE(blocks.allocate().has_value());
  EXPECT_EQ(blocks.num_free_blocks(), 0);
  blocks.release(2);
  EXPECT_EQ(blocks.num_free_blocks(), 1);
  EXPECT_EQ(blocks.allocate(), 2);
  EXPECT_EQ(blocks.counters().allocations, 5);
}

TEST(BlockManagerDeathTest, DoubleReleaseAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the BLAS library has started threads
  BlockManager blocks(2, 4, false);
  const int32_t block = *blocks.allocate();
  blocks.release(block);
  EXPECT_DEATH(blocks.release(block), "ref_counts_");
}

TEST(BlockManager, MatchesCommittedPrefixAndSharesBlocks) {
  BlockManager blocks(8, 4, true);
  const auto tokens = range(100, 10);  // two full blocks and a partial one
  const int32_t first = *blocks.allocate(), second = *blocks.allocate();
  const uint64_t h0 = blocks.commit(first, 0, std::span(tokens).subspan(0, 4));
  blocks.commit(second, h0, std::span(tokens).subspan(4, 4));

  auto match = blocks.match_prefix(tokens, 8);
  EXPECT_EQ(match.blocks, (std::vector<int32_t>{first, second}));
  EXPECT_EQ(match.free_blocks, 0);
  blocks.acquire(match);
  EXPECT_EQ(blocks.ref_count(first), 2);
  EXPECT_EQ(blocks.counters().prefix_hit_blocks, 2);
  EXPECT_EQ(blocks.counters().prefix_query_blocks, 2);

  // max_blocks caps the match; a different first block matches nothing, even with the same
  // second block (the key chains the prefix).
  EXPECT_EQ(blocks.match_prefix(tokens, 1).blocks.size(), 1u);
  auto other = tokens;
  other[0] = 7;
  EXPECT_TRUE(blocks.match_prefix(other, 8).blocks.empty());
}

TEST(BlockManager, FreeCachedBlocksSurviveUntilEvictedLeastRecentlyReleasedFirst) {
  BlockManager blocks(3, 2, true);
  const std::vector<int32_t> a{1, 2}, b{3, 4};
  const int32_t block_a = *blocks.allocate(), block_b = *blocks.allocate();
  blocks.commit(block_a, 0, a);
  blocks.commit(block_b, 0, b);
  blocks.release(block_a);  // released first: evicted first
  blocks.release(block_b);
  EXPECT_EQ(blocks.num_free_blocks(), 3);
  EXPECT_EQ(blocks.num_cached_blocks(), 2);

  // The never-used block goes first, then a's, and b stays matchable.
  EXPECT_NE(*blocks.allocate(), block_a);
  EXPECT_EQ(blocks.counters().evictions, 0);
  EXPECT_EQ(*blocks.allocate(), block_a);
  EXPECT_EQ(blocks.counters().evictions, 1);
  EXPECT_TRUE(blocks.match_prefix(a, 1).blocks.empty());
  auto match_b = blocks.match_prefix(b, 1);
  ASSERT_EQ(match_b.blocks, std::vector<int32_t>{block_b});
  EXPECT_EQ(match_b.free_blocks, 1);
  blocks.acquire(match_b);
  EXPECT_EQ(blocks.num_free_blocks(), 0);
}

TEST(BlockManager, DuplicateContentKeepsTheFirstBlock) {
  BlockManager blocks(2, 2, true);
  const std::vector<int32_t> tokens{5, 6};
  const int32_t first = *blocks.allocate(), second = *blocks.allocate();
  const uint64_t first_hash = blocks.commit(first, 0, tokens);
  EXPECT_EQ(blocks.commit(second, 0, tokens), first_hash);
  EXPECT_EQ(blocks.num_cached_blocks(), 1);
  EXPECT_EQ(blocks.match_prefix(tokens, 1).blocks, std::vector<int32_t>{first});
}

TEST(BlockManager, CachingOffNeverMatches) {
  BlockManager blocks(2, 2, false);
  const std::vector<int32_t> tokens{5, 6};
  const int32_t block = *blocks.allocate();
  blocks.commit(block, 0, tokens);
  EXPECT_TRUE(blocks.match_prefix(tokens, 1).blocks.empty());
  EXPECT_EQ(blocks.num_cached_blocks(), 0);
}

}  // namespace
}  // namespace shardwise
