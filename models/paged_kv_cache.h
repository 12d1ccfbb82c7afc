// Host storage of the paged KV cache of one rank: per layer, K and V blocks in the layout of
// kernels/cpu/kv_cache_write.h, holding only this rank's KV heads.
#pragma once

#include <cstddef>
#include <vector>

namespace shardwise {

class PagedKvCache {
 public:
  PagedKvCache(int n_layers, int num_blocks, int block_size, int n_kv_heads, int head_dim)
      : num_blocks_(num_blocks),
        block_size_(block_size),
        layer_stride_(static_cast<std::size_t>(num_blocks) * block_size * n_kv_heads * head_dim),
        k_(layer_stride_ * n_layers),
        v_(layer_stride_ * n_layers) {}

  float* k(int layer) {
    return k_.data() + layer * layer_stride_;
  }  // [num_blocks, block_size, kv, d]
  float* v(int layer) {
    return v_.data() + layer * layer_stride_;
  }  // [num_blocks, block_size, kv, d]
  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  int num_slots() const { return num_blocks_ * block_size_; }

 private:
  int num_blocks_;
  int block_size_;
  std::size_t layer_stride_;
  std::vector<float> k_;
  std::vector<float> v_;
};

}  // namespace shardwise
