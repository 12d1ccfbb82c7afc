#include "models/cuda_decode_graphs.h"

#include <algorithm>

#include "common/check.h"
#include "common/logging.h"
#include "kernels/cuda/paged_attention_decode.h"

namespace shardwise {

struct CudaDecodeGraphs::Graph {
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
  }
};

CudaDecodeGraphs::CudaDecodeGraphs() = default;
CudaDecodeGraphs::~CudaDecodeGraphs() = default;

int CudaDecodeGraphs::batch_bucket(int n, int max_graph_batch) {
  int bucket = 1;
  while (bucket < n) bucket *= 2;
  return std::min(bucket, max_graph_batch);
}

int CudaDecodeGraphs::context_bucket(int longest, int window) {
  int context = cuda::kPartitionTokens;
  while (context < longest) context *= 2;
  return std::min(context, window);
}

void CudaDecodeGraphs::clear() { graphs_.clear(); }

void CudaDecodeGraphs::use_cache(uint64_t cache_id, cudaStream_t stream) {
  if (cache_id_ == cache_id) return;
  CUDA_CHECK(cudaStreamSynchronize(stream));
  graphs_.clear();
  cache_id_ = cache_id;
}

bool CudaDecodeGraphs::replay_or_capture(std::pair<int, int> key, cudaStream_t stream,
                                         const std::function<void()>& step) {
  if (auto found = graphs_.find(key); found != graphs_.end()) {
    CUDA_CHECK(cudaGraphLaunch(found->second->exec, stream));
    ++replays_;
    return true;
  }
  step();
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  step();
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  auto captured = std::make_unique<Graph>();
  CUDA_CHECK(cudaGraphInstantiate(&captured->exec, graph, 0));
  CUDA_CHECK(cudaGraphDestroy(graph));
  graphs_[key] = std::move(captured);
  log()->debug("captured the decode graph of batch size {}, contexts up to {}", key.first,
               key.second);
  return false;
}

}  // namespace shardwise
