// CUDA graphs of CudaLlamaModel's decode steps, one per (batch bucket, context bucket): batch
// buckets 1, 2, 4, ..., max_graph_batch, context buckets powers of two from one attention
// partition up to the longest context the cache holds, so that short contexts do not launch
// thousands of idle attention blocks. A graph holds the addresses of the step buffers and the
// KV cache it was captured with: the model drops its graphs when either changes.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

namespace shardwise {

class CudaDecodeGraphs {
 public:
  CudaDecodeGraphs();
  ~CudaDecodeGraphs();
  CudaDecodeGraphs(const CudaDecodeGraphs&) = delete;
  CudaDecodeGraphs& operator=(const CudaDecodeGraphs&) = delete;

  // The captured batch size that holds `n` sequences: 1, 2, 4, ..., then max_graph_batch.
  static int batch_bucket(int n, int max_graph_batch);
  // The captured context that holds `longest` tokens: kPartitionTokens, twice that, ...,
  // capped at `window`.
  static int context_bucket(int longest, int window);

  // Drops every graph: the buffers they point at moved.
  void clear();
  // Drops the graphs when they were captured with another cache than `cache_id` (waiting for
  // `stream` first: a replay may still use them).
  void use_cache(uint64_t cache_id, cudaStream_t stream);
  // Replays the graph of (batch bucket, context bucket) `key` on `stream` and returns true;
  // or, for the first step of a key, runs `step` eagerly (choosing GEMM algorithms, warming
  // up), captures the same launches for later steps and returns false.
  bool replay_or_capture(std::pair<int, int> key, cudaStream_t stream,
                         const std::function<void()>& step);
  long replays() const { return replays_; }

 private:
  struct Graph;
  std::map<std::pair<int, int>, std::unique_ptr<Graph>> graphs_;
  uint64_t cache_id_ = 0;  // of the cache the graphs were captured with
  long replays_ = 0;
};

}  // namespace shardwise
