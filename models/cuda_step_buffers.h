// The device buffers one forward step of CudaLlamaModel works in: the step's index arrays
// (uploaded from a pinned host mirror in one copy) and its activations, sized for the largest
// step seen so far. Growing them moves addresses that captured CUDA graphs hold, so the model
// drops its graphs whenever they grow.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/dtype.h"
#include "common/status.h"
#include "kernels/cuda/sampling.h"
#include "models/cuda_weights.h"

namespace shardwise {

// One step's inputs, packed on the host in the order of the buffers' index arrays.
struct CudaStepInputs {
  std::vector<int32_t> ids, positions, slots, logit_rows, query_starts, context_lens;
  std::vector<int32_t> block_tables;  // [n_seqs, table_stride]
  int n_tokens = 0;
  int n_seqs = 0;  // runs of tokens of one sequence, in batch order
  int max_query_len = 0;
  int max_context = 0;
  int table_stride = 0;
  bool decode = false;  // every run is one token
};

// What a step's buffers are sized by.
struct StepDims {
  int tokens = 0;       // e.g. 512
  int rows = 0;         // logit rows (may repeat a token, so may exceed tokens), e.g. 64
  int seqs = 0;         // e.g. 64
  int table_ints = 0;   // block-table entries, [seqs, table stride]
  int max_context = 0;  // of a decode step (its attention workspace); 0 for prefill
};

// The model's shapes, fixed at construction.
struct StepBufferShapes {
  DType dtype = DType::kBF16;
  int hidden = 0;                  // e.g. 4096
  int head_dim = 0;                // e.g. 128
  int local_heads = 0;             // this rank's query heads, e.g. 32 / tp
  int local_kv_heads = 0;          // this rank's KV heads, e.g. 8 / tp
  int64_t local_ffn = 0;           // this rank's slice of the FFN, e.g. 14336 / tp
  int64_t padded_local_vocab = 0;  // this rank's lm_head rows
  int vocab = 0;                   // e.g. 128256
  int tp = 1;                      // ranks of the group (tp > 1 gathers the logits)
  int max_graph_batch = 0;         // rows of row_logits
};

class CudaStepBuffers {
 public:
  explicit CudaStepBuffers(StepBufferShapes shapes) : shapes_(shapes) {}
  ~CudaStepBuffers();
  CudaStepBuffers(const CudaStepBuffers&) = delete;
  CudaStepBuffers& operator=(const CudaStepBuffers&) = delete;

  // True when a step of `dims` does not fit the buffers made so far. It depends only on the
  // dimensions of the steps reserved before, so every rank of a tensor-parallel group, running
  // the same steps, answers alike.
  bool needs_growth(const StepDims& dims) const;
  // Grows every buffer to hold `dims` (and every step reserved before). RESOURCE_EXHAUSTED,
  // naming the buffer and the sizes, when the device memory is not there; the buffers are then
  // released, as by release().
  Status grow(const StepDims& dims);
  // Frees everything: the next step reserves from nothing.
  void release();
  // Copies the step's index arrays to the device, ordered on `stream`.
  void upload(const CudaStepInputs& inputs, cudaStream_t stream);
  // The sampler's rows, tokens and workspace for `rows` rows of `vocab` logits, grown when
  // needed (synchronising `stream` first, since a previous step may still read them).
  Status reserve_sampling(int rows, cudaStream_t stream);

  int32_t* ids = nullptr;           // [tokens]
  int32_t* positions = nullptr;     // [tokens]
  int32_t* slots = nullptr;         // [tokens]
  int32_t* logit_rows = nullptr;    // [rows]
  int32_t* context_lens = nullptr;  // [seqs]
  int32_t* query_starts = nullptr;  // [seqs + 1]
  int32_t* block_tables = nullptr;  // [table_ints]

  void* residual = nullptr;       // [tokens, hidden] T: the residual stream
  void* normed = nullptr;         // [tokens, hidden] T
  void* sublayer = nullptr;       // [tokens, hidden] T: attention or MLP output
  void* qkv = nullptr;            // [tokens, qkv_width] T
  void* attended = nullptr;       // [tokens, local_heads * head_dim] T
  void* gate_up = nullptr;        // [tokens, 2 * local_ffn] T
  void* activated = nullptr;      // [tokens, local_ffn] T
  void* row_hidden = nullptr;     // [rows, hidden] T: the logit rows' hidden states
  float* local_logits = nullptr;  // [rows, padded_local_vocab]
  float* gathered = nullptr;      // [tp, rows, padded_local_vocab] (tp > 1)
  float* logits = nullptr;        // [rows, vocab]
  float* row_logits = nullptr;    // [max_graph_batch, vocab]: logit rows of a graph step
  void* attention_workspace = nullptr;

  cuda::SamplingRow* sample_rows = nullptr;  // [rows]
  int32_t* sampled = nullptr;                // [rows]
  void* sample_workspace = nullptr;

 private:
  Status allocate();

  const StepBufferShapes shapes_;
  StepDims reserved_;           // elementwise maximum of every step grown for
  std::size_t small_ints_ = 0;  // index ints before block_tables (one pinned copy per step)
  int32_t* pinned_ = nullptr;   // host mirror of the arrays before block_tables
  DeviceAllocation index_storage_;
  DeviceAllocation activation_storage_;
  DeviceAllocation attention_storage_;
  DeviceAllocation sample_storage_;
  int sample_rows_capacity_ = 0;
};

}  // namespace shardwise
