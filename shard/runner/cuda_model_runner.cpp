#include "shard/runner/cuda_model_runner.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "common/check.h"
#include "common/logging.h"

namespace shardwise {

StatusOr<std::unique_ptr<CudaModelRunner>> CudaModelRunner::make(CudaLlamaModel& model,
                                                                 int num_kv_blocks,
                                                                 int block_size) {
  SW_ASSIGN_OR_RETURN(CudaKvCache cache, model.make_kv_cache(num_kv_blocks, block_size));
  return std::make_unique<CudaModelRunner>(model, std::move(cache));
}

StatusOr<std::vector<int32_t>> CudaModelRunner::execute_and_sample(
    const ForwardBatch& batch, std::span<const RowSampling> rows) {
  std::vector<cuda::SamplingRow> device_rows(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    device_rows[i] = {rows[i].temperature, rows[i].top_k, rows[i].top_p,
                      rows[i].min_p,       rows[i].seed,  rows[i].offset};
  }
  return model_.forward_and_sample(batch, cache_, device_rows);
}

StatusOr<int> cuda_kv_blocks_for_budget(const CudaLlamaModel& model, int block_size,
                                        double kv_cache_gb, double fraction, int min_tokens) {
  // Activations, GEMM and attention workspaces, graphs: kept out of the automatic budget.
  constexpr double kReserveBytes = 1.5 * (1 << 30);
  constexpr double kGiB = 1 << 30;
  std::size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const double budget =
      kv_cache_gb > 0 ? kv_cache_gb * kGiB : std::max(0.0, fraction * free_bytes - kReserveBytes);
  const std::size_t block_bytes = model.kv_block_bytes(block_size);
  const long long blocks = static_cast<long long>(budget / block_bytes);
  const long long needed = (min_tokens + block_size - 1) / block_size;
  if (budget > free_bytes || blocks < needed) {
    return resource_exhausted(
        "the KV cache does not fit: weights take {:.2f} GiB, {:.2f} GiB of {:.2f} GiB are free, "
        "the cache budget is {:.2f} GiB ({} blocks of {:.2f} MiB) but {} tokens need {} blocks; "
        "lower --kv-cache-gb or the context, or raise --tp",
        model.weight_bytes() / kGiB, free_bytes / kGiB, total_bytes / kGiB, budget / kGiB, blocks,
        block_bytes / double(1 << 20), min_tokens, needed);
  }
  return static_cast<int>(std::min<long long>(blocks, 1 << 30));
}

}  // namespace shardwise
