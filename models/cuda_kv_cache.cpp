#include "models/cuda_kv_cache.h"

#include <cuda_runtime.h>

#include <atomic>

#include "common/check.h"

namespace shardwise {

std::size_t CudaKvCache::block_bytes(int n_layers, int block_size, int n_kv_heads, int head_dim,
                                     DType dtype) {
  return 2ull * n_layers * block_size * n_kv_heads * head_dim * dtype_size(dtype);
}

StatusOr<CudaKvCache> CudaKvCache::make(int n_layers, int num_blocks, int block_size,
                                        int n_kv_heads, int head_dim, DType dtype) {
  if (num_blocks < 1 || block_size < 1) {
    return invalid_argument("a KV cache needs at least one block of at least one token");
  }
  static std::atomic<uint64_t> next_id{1};
  CudaKvCache cache;
  cache.id_ = next_id++;
  cache.num_blocks_ = num_blocks;
  cache.block_size_ = block_size;
  cache.layer_bytes_ =
      static_cast<std::size_t>(num_blocks) * block_size * n_kv_heads * head_dim * dtype_size(dtype);
  SW_ASSIGN_OR_RETURN(cache.storage_,
                      DeviceAllocation::make(2 * n_layers * cache.layer_bytes_, "the KV cache"));
  // Zeroed so that unwritten slots are finite (the attention kernels never read them).
  CUDA_CHECK(cudaMemset(cache.storage_.get(), 0, cache.storage_.bytes()));
  // The model's stream does not wait for the legacy default stream's memset.
  CUDA_CHECK(cudaDeviceSynchronize());
  return cache;
}

void* CudaKvCache::k(int layer) const {
  return static_cast<char*>(storage_.get()) + (2 * layer) * layer_bytes_;
}

void* CudaKvCache::v(int layer) const {
  return static_cast<char*>(storage_.get()) + (2 * layer + 1) * layer_bytes_;
}

}  // namespace shardwise
