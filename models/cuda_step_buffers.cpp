#include "models/cuda_step_buffers.h"

#include <algorithm>
#include <utility>

#include "common/check.h"
#include "kernels/cuda/paged_attention_decode.h"

namespace shardwise {
namespace {

std::size_t align256(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

CudaStepBuffers::~CudaStepBuffers() {
  if (pinned_ != nullptr) cudaFreeHost(pinned_);
}

bool CudaStepBuffers::needs_growth(const StepDims& d) const {
  const StepDims& r = reserved_;
  return d.tokens > r.tokens || d.rows > r.rows || d.seqs > r.seqs || d.table_ints > r.table_ints ||
         d.max_context > r.max_context;
}

Status CudaStepBuffers::grow(const StepDims& d) {
  StepDims& r = reserved_;
  r.tokens = std::max(d.tokens, r.tokens);
  r.rows = std::max(d.rows, r.rows);
  r.seqs = std::max(d.seqs, r.seqs);
  r.table_ints = std::max(d.table_ints, r.table_ints);
  r.max_context = std::max(d.max_context, r.max_context);
  Status status = allocate();
  if (!status.ok()) release();
  return status;
}

void CudaStepBuffers::release() {
  index_storage_ = DeviceAllocation();
  activation_storage_ = DeviceAllocation();
  attention_storage_ = DeviceAllocation();
  sample_storage_ = DeviceAllocation();
  sample_rows_capacity_ = 0;
  if (pinned_ != nullptr) CUDA_CHECK(cudaFreeHost(pinned_));
  pinned_ = nullptr;
  small_ints_ = 0;
  reserved_ = {};
  for (int32_t** p : {&ids, &positions, &slots, &logit_rows, &context_lens, &query_starts,
                      &block_tables, &sampled}) {
    *p = nullptr;
  }
  for (void** p : {&residual, &normed, &sublayer, &qkv, &attended, &gate_up, &activated,
                   &row_hidden, &attention_workspace, &sample_workspace}) {
    *p = nullptr;
  }
  local_logits = gathered = logits = row_logits = nullptr;
  sample_rows = nullptr;
}

Status CudaStepBuffers::allocate() {
  // Old buffers go first, so that the new ones can take their memory.
  index_storage_ = DeviceAllocation();
  activation_storage_ = DeviceAllocation();
  attention_storage_ = DeviceAllocation();
  sample_storage_ = DeviceAllocation();  // sized again on the next sampling call
  sample_rows_capacity_ = 0;
  const StepDims& r = reserved_;
  const StepBufferShapes& s = shapes_;

  const std::size_t attention_bytes = cuda::paged_attention_decode_workspace_bytes(
      r.seqs, s.local_heads, s.head_dim, r.max_context);
  if (attention_bytes > 0) {
    SW_ASSIGN_OR_RETURN(attention_storage_,
                        DeviceAllocation::make(attention_bytes, "the attention workspace"));
  }
  attention_workspace = attention_storage_.get();

  // Index arrays: the small ones first (one copy per step), then the block tables.
  small_ints_ = 3 * static_cast<std::size_t>(r.tokens) + r.rows + 2 * r.seqs + 1;
  SW_ASSIGN_OR_RETURN(index_storage_,
                      DeviceAllocation::make((small_ints_ + r.table_ints) * sizeof(int32_t),
                                             "the step's index arrays"));
  int32_t* p = static_cast<int32_t*>(index_storage_.get());
  ids = p;
  positions = p + r.tokens;
  slots = p + 2 * r.tokens;
  logit_rows = p + 3 * r.tokens;
  context_lens = logit_rows + r.rows;
  query_starts = context_lens + r.seqs;
  block_tables = p + small_ints_;
  if (pinned_ != nullptr) CUDA_CHECK(cudaFreeHost(pinned_));
  pinned_ = nullptr;
  if (cudaMallocHost(&pinned_, small_ints_ * sizeof(int32_t)) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the error: this one is reported as a Status
    pinned_ = nullptr;
    return resource_exhausted("cannot pin {} bytes of host memory for the step's index arrays",
                              small_ints_ * sizeof(int32_t));
  }

  const std::size_t element = dtype_size(s.dtype);
  const std::size_t n = r.tokens;
  const std::size_t rows = r.rows;
  const int64_t q_width = static_cast<int64_t>(s.local_heads) * s.head_dim;
  const int64_t qkv_width = q_width + 2ll * s.local_kv_heads * s.head_dim;
  std::vector<std::pair<void**, std::size_t>> parts = {
      {&residual, n * s.hidden * element},
      {&normed, n * s.hidden * element},
      {&sublayer, n * s.hidden * element},
      {&qkv, n * qkv_width * element},
      {&attended, n * q_width * element},
      {&gate_up, n * 2 * s.local_ffn * element},
      {&activated, n * s.local_ffn * element},
      // logit rows may repeat a token: there can be more of them than tokens
      {&row_hidden, rows * s.hidden * element},
      {reinterpret_cast<void**>(&local_logits), rows * s.padded_local_vocab * sizeof(float)},
      {reinterpret_cast<void**>(&gathered),
       s.tp > 1 ? s.tp * rows * s.padded_local_vocab * sizeof(float) : 0},
      {reinterpret_cast<void**>(&logits), s.tp > 1 ? rows * s.vocab * sizeof(float) : 0},
      {reinterpret_cast<void**>(&row_logits),  // graph steps only: at most max_graph_batch
       std::min<std::size_t>(rows, s.max_graph_batch) * s.vocab * sizeof(float)},
  };
  std::size_t offset = 0;
  for (auto& [pointer, bytes] : parts) offset += align256(bytes);
  SW_ASSIGN_OR_RETURN(activation_storage_, DeviceAllocation::make(offset, "activation buffers"));
  offset = 0;
  for (auto& [pointer, bytes] : parts) {
    *pointer = bytes == 0 ? nullptr : static_cast<char*>(activation_storage_.get()) + offset;
    offset += align256(bytes);
  }
  if (s.tp == 1) logits = local_logits;  // the whole vocabulary already, in row order
  return ok_status();
}

void CudaStepBuffers::upload(const CudaStepInputs& in, cudaStream_t stream) {
  auto put = [&](const std::vector<int32_t>& values, const int32_t* device) {
    std::copy(values.begin(), values.end(), pinned_ + (device - ids));
  };
  put(in.ids, ids);
  put(in.positions, positions);
  put(in.slots, slots);
  put(in.logit_rows, logit_rows);
  put(in.context_lens, context_lens);
  put(in.query_starts, query_starts);
  CUDA_CHECK(
      cudaMemcpyAsync(ids, pinned_, small_ints_ * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  if (!in.block_tables.empty()) {
    CUDA_CHECK(cudaMemcpyAsync(block_tables, in.block_tables.data(),
                               in.block_tables.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                               stream));
  }
}

Status CudaStepBuffers::reserve_sampling(int rows, cudaStream_t stream) {
  const int capacity = std::max(rows, reserved_.rows);
  if (sample_storage_.get() != nullptr && rows <= sample_rows_capacity_) return ok_status();
  CUDA_CHECK(cudaStreamSynchronize(stream));
  sample_storage_ = DeviceAllocation();
  const std::size_t workspace = cuda::sample_workspace_bytes(capacity, shapes_.vocab);
  const std::size_t rows_bytes = align256(capacity * sizeof(cuda::SamplingRow));
  const std::size_t tokens_bytes = align256(capacity * sizeof(int32_t));
  SW_ASSIGN_OR_RETURN(sample_storage_,
                      DeviceAllocation::make(rows_bytes + tokens_bytes + workspace, "sampling"));
  char* base = static_cast<char*>(sample_storage_.get());
  sample_rows = reinterpret_cast<cuda::SamplingRow*>(base);
  sampled = reinterpret_cast<int32_t*>(base + rows_bytes);
  sample_workspace = base + rows_bytes + tokens_bytes;
  sample_rows_capacity_ = capacity;
  return ok_status();
}

}  // namespace shardwise
