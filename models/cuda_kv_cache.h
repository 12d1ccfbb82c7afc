// The paged KV cache of one rank on the device: per layer, K and V blocks in the layout of
// kernels/cuda/kv_cache_write.h, in the model's dtype, holding only this rank's KV heads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"
#include "common/status.h"
#include "models/cuda_weights.h"

namespace shardwise {

class CudaKvCache {
 public:
  // RESOURCE_EXHAUSTED, with the size, when the device memory is not there.
  static StatusOr<CudaKvCache> make(int n_layers, int num_blocks, int block_size, int n_kv_heads,
                                    int head_dim, DType dtype);
  // Bytes one block takes over all layers, K and V.
  static std::size_t block_bytes(int n_layers, int block_size, int n_kv_heads, int head_dim,
                                 DType dtype);

  void* k(int layer) const;  // [num_blocks, block_size, n_kv_heads, head_dim]
  void* v(int layer) const;  // [num_blocks, block_size, n_kv_heads, head_dim]
  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  int num_slots() const { return num_blocks_ * block_size_; }
  // Unique per cache made in this process (captured graphs hold its addresses).
  uint64_t id() const { return id_; }

 private:
  uint64_t id_ = 0;
  int num_blocks_ = 0;
  int block_size_ = 0;
  std::size_t layer_bytes_ = 0;  // of K (or V) of one layer
  DeviceAllocation storage_;     // [n_layers][K, V][num_blocks, block_size, n_kv, head_dim]
};

}  // namespace shardwise
