// Owns the KV cache's block ids [0, num_blocks): hands out blocks to sequences as they grow,
// takes them back at finish, cancel or preemption, and keeps an automatic prefix cache.
//
// Prefix cache: a full block is keyed by hash(hash of the blocks before it, its tokens), so
// a key names the block's whole prefix. Blocks are reference-counted (sequences sharing a
// prefix share its blocks). A cached block whose count drops to zero stays in the cache,
// on the free list in least-recently-released order, and is evicted only when allocate()
// needs it. Blocks without content go to the front of the free list and are reused first.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace shardwise {

class BlockManager {
 public:
  struct Counters {
    int64_t allocations = 0;          // blocks handed out by allocate()
    int64_t evictions = 0;            // of those, cached blocks whose content was dropped
    int64_t prefix_query_blocks = 0;  // full prompt blocks looked up at admission
    int64_t prefix_hit_blocks = 0;    // of those, found in the cache and reused
  };

  // The cached blocks holding a token sequence's leading full blocks.
  struct PrefixMatch {
    std::vector<int32_t> blocks;   // [n] in order
    std::vector<uint64_t> hashes;  // [n] each block's key
    int free_blocks = 0;           // how many of them no sequence uses now
    int queried_blocks = 0;        // how many full blocks were looked up
  };

  BlockManager(int num_blocks, int block_size, bool enable_prefix_caching);

  int num_blocks() const { return static_cast<int>(ref_counts_.size()); }
  int block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks no sequence uses, cached ones included (they are evictable).
  int num_free_blocks() const { return static_cast<int>(free_list_.size()); }
  int ref_count(int32_t block) const { return ref_counts_[block]; }
  int num_cached_blocks() const { return static_cast<int>(cached_.size()); }
  const Counters& counters() const { return counters_; }

  // The longest run of cached blocks matching `tokens`' full blocks, at most `max_blocks`.
  PrefixMatch match_prefix(std::span<const int32_t> tokens, int max_blocks) const;
  // Takes a reference on every block of `match` and counts the hits.
  void acquire(const PrefixMatch& match);
  // A block for new content, evicting the least recently released cached block if it must;
  // nullopt when every block is in use.
  std::optional<int32_t> allocate();
  // Drops one reference; the block becomes free (and stays cached if it was) at zero.
  void release(int32_t block);
  // Records that `block` now holds the full block `tokens` after the prefix keyed by
  // `parent_hash` (0 for the first block); returns the block's key. If another block already
  // holds that content the cache keeps the older one.
  uint64_t commit(int32_t block, uint64_t parent_hash, std::span<const int32_t> tokens);

  static uint64_t block_hash(uint64_t parent_hash, std::span<const int32_t> tokens);

 private:
  struct CachedContent {
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    std::vector<int32_t> tokens;  // [block_size]: compared on lookup so a hash collision misses
  };

  bool holds(int32_t block, uint64_t parent_hash, std::span<const int32_t> tokens) const;
  void take_from_free_list(int32_t block);

  int block_size_;
  bool prefix_caching_;
  std::vector<int> ref_counts_;                              // [num_blocks]
  std::list<int32_t> free_list_;                             // front: reused first
  std::vector<std::list<int32_t>::iterator> free_position_;  // [num_blocks] valid if free
  std::vector<std::optional<CachedContent>> content_;        // [num_blocks]
  std::unordered_map<uint64_t, int32_t> cached_;             // key -> block
  Counters counters_;
};

}  // namespace shardwise
