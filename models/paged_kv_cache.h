// Host storage of the paged KV cache of one rank: per layer, K and V blocks in the layout of
// kernels/cpu/kv_cache_write.h, holding only this rank's KV heads, in fp32 or bf16.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/check.h"

namespace shardwise {

enum class KvCacheType {
  kF32,   // exact
  kBF16,  // half the memory and bytes read per decode step; K/V rounded to bf16
};

class PagedKvCache {
 public:
  PagedKvCache(int n_layers, int num_blocks, int block_size, int n_kv_heads, int head_dim,
               KvCacheType type = KvCacheType::kF32)
      : type_(type),
        num_blocks_(num_blocks),
        block_size_(block_size),
        layer_stride_(static_cast<std::size_t>(num_blocks) * block_size * n_kv_heads * head_dim),
        k_(type == KvCacheType::kF32 ? layer_stride_ * n_layers : 0),
        v_(k_.size()),
        k16_(type == KvCacheType::kBF16 ? layer_stride_ * n_layers : 0),
        v16_(k16_.size()) {}

  KvCacheType type() const { return type_; }
  // [num_blocks, block_size, kv, d] of one layer, for a kF32 cache.
  float* k(int layer) { return typed(k_, layer); }
  float* v(int layer) { return typed(v_, layer); }
  // The same for a kBF16 cache (bf16 bit patterns).
  std::uint16_t* k_bf16(int layer) { return typed(k16_, layer); }
  std::uint16_t* v_bf16(int layer) { return typed(v16_, layer); }
  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  int num_slots() const { return num_blocks_ * block_size_; }
  std::size_t bytes() const {
    return (k_.size() + v_.size()) * sizeof(float) + (k16_.size() + v16_.size()) * 2;
  }

 private:
  template <typename T>
  T* typed(std::vector<T>& storage, int layer) {
    SW_CHECK(!storage.empty() || layer_stride_ == 0);
    return storage.data() + layer * layer_stride_;
  }

  KvCacheType type_;
  int num_blocks_;
  int block_size_;
  std::size_t layer_stride_;
  std::vector<float> k_;
  std::vector<float> v_;
  std::vector<std::uint16_t> k16_;
  std::vector<std::uint16_t> v16_;
};

}  // namespace shardwise
