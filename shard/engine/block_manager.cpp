#include "shard/engine/block_manager.h"

#include <algorithm>

#include "common/check.h"
#include "common/hash.h"

namespace shardwise {
BlockManager::BlockManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : block_size_(block_size),
      prefix_caching_(enable_prefix_caching),
      ref_counts_(num_blocks, 0),
      free_position_(num_blocks),
      content_(num_blocks) {
  SW_CHECK(num_blocks > 0 && block_size > 0);
  for (int32_t block = 0; block < num_blocks; ++block) {
    free_position_[block] = free_list_.insert(free_list_.end(), block);
  }
}

uint64_t BlockManager::block_hash(uint64_t parent_hash, std::span<const int32_t> tokens) {
  uint64_t hash = mix64(parent_hash);
  for (int32_t token : tokens) hash = mix64(hash ^ static_cast<uint32_t>(token));
  return hash;
}

bool BlockManager::holds(int32_t block, uint64_t parent_hash,
                         std::span<const int32_t> tokens) const {
  const auto& content = content_[block];
  return content && content->parent_hash == parent_hash &&
         std::equal(tokens.begin(), tokens.end(), content->tokens.begin(), content->tokens.end());
}

BlockManager::PrefixMatch BlockManager::match_prefix(std::span<const int32_t> tokens,
                                                     int max_blocks) const {
  PrefixMatch match;
  if (!prefix_caching_) return match;
  const int full_blocks = std::min(static_cast<int>(tokens.size()) / block_size_, max_blocks);
  match.queried_blocks = full_blocks;
  uint64_t parent = 0;
  for (int i = 0; i < full_blocks; ++i) {
    const auto block_tokens = tokens.subspan(i * block_size_, block_size_);
    const uint64_t hash = block_hash(parent, block_tokens);
    const auto found = cached_.find(hash);
    if (found == cached_.end() || !holds(found->second, parent, block_tokens)) break;
    match.blocks.push_back(found->second);
    match.hashes.push_back(hash);
    if (ref_counts_[found->second] == 0) ++match.free_blocks;
    parent = hash;
  }
  return match;
}

void BlockManager::take_from_free_list(int32_t block) {
  SW_CHECK(ref_counts_[block] == 0);
  free_list_.erase(free_position_[block]);
}

void BlockManager::acquire(const PrefixMatch& match) {
  for (int32_t block : match.blocks) {
    if (ref_counts_[block] == 0) take_from_free_list(block);
    ++ref_counts_[block];
  }
  counters_.prefix_query_blocks += match.queried_blocks;
  counters_.prefix_hit_blocks += static_cast<int64_t>(match.blocks.size());
}

std::optional<int32_t> BlockManager::allocate() {
  if (free_list_.empty()) return std::nullopt;
  const int32_t block = free_list_.front();
  take_from_free_list(block);
  if (content_[block]) {
    cached_.erase(content_[block]->hash);
    content_[block].reset();
    ++counters_.evictions;
  }
  ref_counts_[block] = 1;
  ++counters_.allocations;
  return block;
}

void BlockManager::release(int32_t block) {
  SW_CHECK(block >= 0 && block < num_blocks());
  SW_CHECK(ref_counts_[block] > 0);  // a second release of the same reference is a bug
  if (--ref_counts_[block] > 0) return;
  // Cached blocks queue for eviction in release order; empty ones are reused first.
  const auto where = content_[block] ? free_list_.end() : free_list_.begin();
  free_position_[block] = free_list_.insert(where, block);
}

uint64_t BlockManager::commit(int32_t block, uint64_t parent_hash,
                              std::span<const int32_t> tokens) {
  SW_CHECK(static_cast<int>(tokens.size()) == block_size_ && ref_counts_[block] > 0);
  const uint64_t hash = block_hash(parent_hash, tokens);
  if (!prefix_caching_ || content_[block] || cached_.contains(hash)) return hash;
  content_[block] = CachedContent{hash, parent_hash, {tokens.begin(), tokens.end()}};
  cached_.emplace(hash, block);
  return hash;
}

}  // namespace shardwise
