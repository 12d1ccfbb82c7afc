#include "models/cuda_llama_model.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <set>

#include "comm/communicator.h"
#include "common/check.h"
#include "common/logging.h"
#include "kernels/cpu/rotary.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/kv_cache_write.h"
#include "kernels/cuda/paged_attention_decode.h"
#include "kernels/cuda/prefill_attention.h"
#include "kernels/cuda/rms_norm.h"
#include "kernels/cuda/rotary.h"
#include "kernels/cuda/silu_and_mul.h"
#include "models/llama_model.h"
#include "models/paged_kv_cache.h"

namespace shardwise {
namespace {

// Calls f with a value of the C++ type of `dtype` (F32 or BF16), for the kernel templates.
template <typename F>
void with_type(DType dtype, F&& f) {
  if (dtype == DType::kF32) {
    f(float{});
  } else {
    f(__nv_bfloat16{});
  }
}

template <typename T>
T* typed(void* p) {
  return static_cast<T*>(p);
}

std::size_t align256(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

// Buckets of captured decode batch sizes: 1, 2, 4, ..., then max_graph_batch itself.
int bucket_for(int n, int max_graph_batch) {
  int bucket = 1;
  while (bucket < n) bucket *= 2;
  return std::min(bucket, max_graph_batch);
}

}  // namespace

// ---- CudaKvCache ----------------------------------------------------------------------------

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

// ---- Buffers --------------------------------------------------------------------------------

// Per-step inputs, packed on the host in the order of Buffers' index arrays.
struct CudaLlamaModel::StepInputs {
  std::vector<int32_t> ids, positions, slots, logit_rows, query_starts, context_lens;
  std::vector<int32_t> block_tables;  // [n_seqs, table_stride]
  int n_tokens = 0;
  int n_seqs = 0;  // runs of tokens of one sequence, in batch order
  int max_query_len = 0;
  int max_context = 0;
  int table_stride = 0;
  bool decode = false;  // every run is one token
};

// Device buffers sized for a number of tokens; reallocated (and graphs dropped) when a larger
// batch comes.
struct CudaLlamaModel::Buffers {
  int tokens = 0;      // capacity in tokens
  int rows = 0;        // capacity in logit rows
  int seqs = 0;        // capacity in sequences
  int table_ints = 0;  // capacity of block_tables
  std::size_t attention_workspace_bytes = 0;
  std::size_t sample_workspace_bytes = 0;

  DeviceAllocation index_storage;
  int32_t* ids = nullptr;           // [tokens]
  int32_t* positions = nullptr;     // [tokens]
  int32_t* slots = nullptr;         // [tokens]
  int32_t* logit_rows = nullptr;    // [rows]
  int32_t* context_lens = nullptr;  // [seqs]
  int32_t* query_starts = nullptr;  // [seqs + 1]
  int32_t* block_tables = nullptr;  // [table_ints]
  int32_t* pinned = nullptr;        // host mirror of the arrays before block_tables
  std::size_t small_ints = 0;       // ints before block_tables

  DeviceAllocation activation_storage;
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

  DeviceAllocation attention_workspace;
  DeviceAllocation sample_storage;
  cuda::SamplingRow* sample_rows = nullptr;  // [rows]
  int32_t* sampled = nullptr;                // [rows]
  void* sample_workspace = nullptr;

  ~Buffers() {
    if (pinned != nullptr) cudaFreeHost(pinned);
  }
};

struct CudaLlamaModel::Graph {
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
  }
};

// ---- Model ----------------------------------------------------------------------------------

CudaLlamaModel::CudaLlamaModel(LlamaConfig config, CudaWeights weights, DeviceCommunicator& comm,
                               CudaModelOptions options)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      comm_(comm),
      options_(options),
      buffers_(std::make_unique<Buffers>()) {
  SW_CHECK(weights_.dtype == options_.dtype);
  CUDA_CHECK(cudaGetDevice(&device_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  std::vector<float> inv_freq(config_.head_dim / 2);
  cpu::rope_inv_freq(inv_freq.data(), config_.head_dim, config_.rope);
  auto allocation = DeviceAllocation::make(inv_freq.size() * sizeof(float), "rotary table");
  SW_CHECK(allocation.ok());
  inv_freq_ = std::move(allocation).value();
  CUDA_CHECK(cudaMemcpy(inv_freq_.get(), inv_freq.data(), inv_freq.size() * sizeof(float),
                        cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaDeviceSynchronize());  // uploads done before stream_'s first kernel
}

CudaLlamaModel::~CudaLlamaModel() {
  graphs_.clear();
  if (stream_ != nullptr) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

std::size_t CudaLlamaModel::kv_block_bytes(int block_size) const {
  return CudaKvCache::block_bytes(config_.num_hidden_layers, block_size,
                                  weights_.attention.local_kv_heads, config_.head_dim,
                                  options_.dtype);
}

StatusOr<CudaKvCache> CudaLlamaModel::make_kv_cache(int num_blocks, int block_size) const {
  return CudaKvCache::make(config_.num_hidden_layers, num_blocks, block_size,
                           weights_.attention.local_kv_heads, config_.head_dim, options_.dtype);
}

Status CudaLlamaModel::validate(const ForwardBatch& batch, const CudaKvCache& cache) const {
  // The CPU model's checks, on a model and cache of no weights and no storage: only the
  // config and the cache geometry matter to them.
  SoloCommunicator solo;
  LlamaWeights shape_only;
  shape_only.attention = weights_.attention;
  const LlamaModel shapes(config_, std::move(shape_only), solo);
  const PagedKvCache geometry(0, cache.num_blocks(), cache.block_size(),
                              weights_.attention.local_kv_heads, config_.head_dim);
  SW_RETURN_IF_ERROR(shapes.validate(batch, geometry));
  std::set<int32_t> finished;
  for (int t = 1; t < batch.n_tokens(); ++t) {
    const int32_t seq = batch.seq_index[t];
    if (seq == batch.seq_index[t - 1]) {
      if (batch.positions[t] != batch.positions[t - 1] + 1) {
        return invalid_argument(
            "tokens {} and {} of sequence {} are at positions {} and {}: the GPU model needs "
            "consecutive positions",
            t - 1, t, seq, batch.positions[t - 1], batch.positions[t]);
      }
    } else {
      finished.insert(batch.seq_index[t - 1]);
      if (finished.count(seq) != 0) {
        return invalid_argument(
            "the tokens of sequence {} are not contiguous in the batch (token {})", seq, t);
      }
    }
  }
  return ok_status();
}

void CudaLlamaModel::ensure_capacity(int n_tokens, int n_rows, int n_seqs, int table_ints,
                                     int max_context) {
  Buffers& b = *buffers_;
  const int heads = weights_.attention.local_heads;
  const std::size_t attention_bytes =
      cuda::paged_attention_decode_workspace_bytes(n_seqs, heads, config_.head_dim, max_context);
  const bool fits =
      n_tokens <= b.tokens && n_rows <= b.rows && n_seqs <= b.seqs && table_ints <= b.table_ints;
  if (fits && attention_bytes <= b.attention_workspace_bytes) {
    return;
  }
  // Growing moves buffers that captured graphs point at.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  graphs_.clear();
  if (attention_bytes > b.attention_workspace_bytes) {
    b.attention_workspace = DeviceAllocation();
    auto workspace = DeviceAllocation::make(attention_bytes, "the attention workspace");
    if (!workspace.ok()) log()->critical("{}", workspace.status().to_string());
    SW_CHECK(workspace.ok());
    b.attention_workspace = std::move(workspace).value();
    b.attention_workspace_bytes = attention_bytes;
  }
  if (fits) return;

  b.tokens = std::max(n_tokens, b.tokens);
  b.rows = std::max(n_rows, b.rows);
  b.seqs = std::max(n_seqs, b.seqs);
  b.table_ints = std::max(table_ints, b.table_ints);
  b.sample_storage = DeviceAllocation();  // resized on the next sampling call
  b.sample_workspace_bytes = 0;

  // Index arrays: small ones first (one copy per step), then the block tables.
  b.small_ints = 3 * static_cast<std::size_t>(b.tokens) + b.rows + 2 * b.seqs + 1;
  b.index_storage = DeviceAllocation();
  auto index = DeviceAllocation::make((b.small_ints + b.table_ints) * sizeof(int32_t), "indices");
  SW_CHECK(index.ok());
  b.index_storage = std::move(index).value();
  int32_t* p = static_cast<int32_t*>(b.index_storage.get());
  b.ids = p;
  b.positions = p + b.tokens;
  b.slots = p + 2 * b.tokens;
  b.logit_rows = p + 3 * b.tokens;
  b.context_lens = b.logit_rows + b.rows;
  b.query_starts = b.context_lens + b.seqs;
  b.block_tables = p + b.small_ints;
  if (b.pinned != nullptr) CUDA_CHECK(cudaFreeHost(b.pinned));
  CUDA_CHECK(cudaMallocHost(&b.pinned, b.small_ints * sizeof(int32_t)));

  const std::size_t element = dtype_size(options_.dtype);
  const std::size_t n = b.tokens;
  const std::size_t rows = b.rows;
  const int64_t hidden = config_.hidden_size;
  const int64_t q_width = static_cast<int64_t>(heads) * config_.head_dim;
  const int64_t qkv_width = q_width + 2ll * weights_.attention.local_kv_heads * config_.head_dim;
  const int64_t ffn = weights_.intermediate.size();
  const int tp = comm_.size();
  std::size_t offset = 0;
  std::vector<std::pair<void**, std::size_t>> parts = {
      {&b.residual, n * hidden * element},
      {&b.normed, n * hidden * element},
      {&b.sublayer, n * hidden * element},
      {&b.qkv, n * qkv_width * element},
      {&b.attended, n * q_width * element},
      {&b.gate_up, n * 2 * ffn * element},
      {&b.activated, n * ffn * element},
      // logit rows may repeat a token: there can be more of them than tokens
      {&b.row_hidden, rows * hidden * element},
      {reinterpret_cast<void**>(&b.local_logits),
       rows * weights_.padded_local_vocab * sizeof(float)},
      {reinterpret_cast<void**>(&b.gathered),
       tp > 1 ? tp * rows * weights_.padded_local_vocab * sizeof(float) : 0},
      {reinterpret_cast<void**>(&b.logits), tp > 1 ? rows * config_.vocab_size * sizeof(float) : 0},
      {reinterpret_cast<void**>(&b.row_logits),  // graph steps only: at most max_graph_batch
       std::min<std::size_t>(rows, options_.max_graph_batch) * config_.vocab_size * sizeof(float)},
  };
  for (auto& [pointer, bytes] : parts) offset += align256(bytes);
  b.activation_storage = DeviceAllocation();
  auto activations = DeviceAllocation::make(offset, "activation buffers");
  if (!activations.ok()) log()->critical("{}", activations.status().to_string());
  SW_CHECK(activations.ok());
  b.activation_storage = std::move(activations).value();
  offset = 0;
  for (auto& [pointer, bytes] : parts) {
    *pointer = bytes == 0 ? nullptr : static_cast<char*>(b.activation_storage.get()) + offset;
    offset += align256(bytes);
  }
  if (tp == 1) b.logits = b.local_logits;  // the whole vocabulary already, in row order
}

void CudaLlamaModel::upload_inputs(const StepInputs& in) {
  Buffers& b = *buffers_;
  auto put = [&](const std::vector<int32_t>& values, const int32_t* device) {
    std::copy(values.begin(), values.end(), b.pinned + (device - b.ids));
  };
  put(in.ids, b.ids);
  put(in.positions, b.positions);
  put(in.slots, b.slots);
  put(in.logit_rows, b.logit_rows);
  put(in.context_lens, b.context_lens);
  put(in.query_starts, b.query_starts);
  CUDA_CHECK(cudaMemcpyAsync(b.ids, b.pinned, b.small_ints * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream_));
  if (!in.block_tables.empty()) {
    CUDA_CHECK(cudaMemcpyAsync(b.block_tables, in.block_tables.data(),
                               in.block_tables.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                               stream_));
  }
}

void CudaLlamaModel::add_and_norm(const void* weight, int n_tokens, bool first) {
  Buffers& b = *buffers_;
  const float eps = config_.rms_norm_eps;
  const int hidden = config_.hidden_size;
  with_type(options_.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (first) {
      cuda::launch_rms_norm(typed<T>(b.normed), typed<T>(b.residual), static_cast<const T*>(weight),
                            n_tokens, hidden, eps, stream_);
    } else {
      cuda::launch_fused_add_rms_norm(typed<T>(b.normed), typed<T>(b.residual),
                                      typed<T>(b.sublayer), static_cast<const T*>(weight), n_tokens,
                                      hidden, eps, stream_);
    }
  });
}

void CudaLlamaModel::attention(int layer, int n_tokens, int n_seqs, int max_query_len,
                               int max_context, int table_stride, bool decode, CudaKvCache& cache) {
  Buffers& b = *buffers_;
  const CudaLayerWeights& w = weights_.layers[layer];
  const DType dt = options_.dtype;
  const int hidden = config_.hidden_size;
  const int head_dim = config_.head_dim;
  const int heads = weights_.attention.local_heads;
  const int kv_heads = weights_.attention.local_kv_heads;
  const int q_width = heads * head_dim;
  const int kv_width = kv_heads * head_dim;
  const int qkv_width = q_width + 2 * kv_width;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  gemm_.linear(b.qkv, dt, b.normed, w.qkv, dt, n_tokens, qkv_width, hidden, stream_);
  with_type(dt, [&](auto tag) {
    using T = decltype(tag);
    T* q = typed<T>(b.qkv);
    T* k = q + q_width;
    T* v = k + kv_width;
    cuda::launch_rotary(q, k, b.positions, static_cast<const float*>(inv_freq_.get()), n_tokens,
                        heads, kv_heads, head_dim, qkv_width, qkv_width, stream_);
    cuda::launch_kv_cache_write(typed<T>(cache.k(layer)), typed<T>(cache.v(layer)), k, v, b.slots,
                                n_tokens, kv_heads, head_dim, qkv_width, stream_);
    if (decode) {
      cuda::launch_paged_attention_decode(typed<T>(b.attended), q, typed<T>(cache.k(layer)),
                                          typed<T>(cache.v(layer)), b.block_tables, b.context_lens,
                                          n_seqs, heads, kv_heads, head_dim, qkv_width,
                                          cache.block_size(), table_stride, max_context, scale,
                                          b.attention_workspace.get(), stream_);
    } else {
      cuda::launch_prefill_attention(
          typed<T>(b.attended), q, typed<T>(cache.k(layer)), typed<T>(cache.v(layer)),
          b.block_tables, b.query_starts, b.context_lens, n_seqs, max_query_len, heads, kv_heads,
          head_dim, qkv_width, cache.block_size(), table_stride, scale, stream_);
    }
  });
  // Row-parallel o_proj: partial sums over this rank's heads, then the layer's one all-reduce.
  gemm_.linear(b.sublayer, dt, b.attended, w.o_proj, dt, n_tokens, hidden, q_width, stream_);
  comm_.all_reduce_sum(b.sublayer, static_cast<std::size_t>(n_tokens) * hidden, dt, stream_);
}

void CudaLlamaModel::mlp(int layer, int n_tokens) {
  Buffers& b = *buffers_;
  const CudaLayerWeights& w = weights_.layers[layer];
  const DType dt = options_.dtype;
  const int hidden = config_.hidden_size;
  const int ffn = static_cast<int>(weights_.intermediate.size());
  gemm_.linear(b.gate_up, dt, b.normed, w.gate_up, dt, n_tokens, 2 * ffn, hidden, stream_);
  with_type(dt, [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_silu_and_mul(typed<T>(b.activated), typed<T>(b.gate_up), n_tokens, ffn, stream_);
  });
  // Row-parallel down_proj: this rank's slice of the FFN, then the one all-reduce.
  gemm_.linear(b.sublayer, dt, b.activated, w.down_proj, dt, n_tokens, hidden, ffn, stream_);
  comm_.all_reduce_sum(b.sublayer, static_cast<std::size_t>(n_tokens) * hidden, dt, stream_);
}

void CudaLlamaModel::lm_head(int n_rows, const int32_t* logit_rows) {
  Buffers& b = *buffers_;
  const DType dt = options_.dtype;
  const int hidden = config_.hidden_size;
  const void* rows = b.normed;
  if (logit_rows != nullptr) {  // only the rows that need logits go through lm_head
    with_type(dt, [&](auto tag) {
      using T = decltype(tag);
      cuda::launch_embedding(typed<T>(b.row_hidden), typed<T>(b.normed), logit_rows, n_rows, hidden,
                             stream_);
    });
    rows = b.row_hidden;
  }
  const int local_vocab = static_cast<int>(weights_.padded_local_vocab);
  gemm_.linear(b.local_logits, DType::kF32, rows, weights_.lm_head, dt, n_rows, local_vocab, hidden,
               stream_);
  const int tp = comm_.size();
  if (tp == 1) return;
  // Vocabulary-parallel lm_head: gather [tp][n_rows][padded slice], then place each rank's
  // slice in its columns of [n_rows, vocab].
  const std::size_t per_rank = static_cast<std::size_t>(n_rows) * local_vocab;
  comm_.all_gather(b.local_logits, per_rank, b.gathered, DType::kF32, stream_);
  for (int r = 0; r < tp; ++r) {
    const Range slice = split_range(config_.vocab_size, TensorParallel{r, tp});
    CUDA_CHECK(cudaMemcpy2DAsync(b.logits + slice.begin, config_.vocab_size * sizeof(float),
                                 b.gathered + r * per_rank, local_vocab * sizeof(float),
                                 slice.size() * sizeof(float), n_rows, cudaMemcpyDeviceToDevice,
                                 stream_));
  }
}

void CudaLlamaModel::forward_layers(int n_tokens, int n_seqs, int max_query_len, int max_context,
                                    int table_stride, bool decode, int n_rows,
                                    const int32_t* logit_rows, CudaKvCache& cache) {
  Buffers& b = *buffers_;
  with_type(options_.dtype, [&](auto tag) {
    using T = decltype(tag);
    cuda::launch_embedding(typed<T>(b.residual), static_cast<const T*>(weights_.embed_tokens),
                           b.ids, n_tokens, config_.hidden_size, stream_);
  });
  // Each sub-layer's output is added to the residual stream by the next norm (fused).
  for (int layer = 0; layer < config_.num_hidden_layers; ++layer) {
    add_and_norm(weights_.layers[layer].input_norm, n_tokens, layer == 0);
    attention(layer, n_tokens, n_seqs, max_query_len, max_context, table_stride, decode, cache);
    add_and_norm(weights_.layers[layer].post_attention_norm, n_tokens, false);
    mlp(layer, n_tokens);
  }
  add_and_norm(weights_.final_norm, n_tokens, false);
  if (n_rows > 0) lm_head(n_rows, logit_rows);
}

namespace {

bool is_identity(const std::vector<int32_t>& rows, int n) {
  if (static_cast<int>(rows.size()) != n) return false;
  for (int i = 0; i < n; ++i) {
    if (rows[i] != i) return false;
  }
  return true;
}

}  // namespace

bool CudaLlamaModel::graph_eligible(const ForwardBatch& batch, const CudaKvCache& cache) const {
  if (!options_.cuda_graphs || batch.n_tokens() > options_.max_graph_batch) return false;
  if (batch.logit_rows.size() > batch.token_ids.size()) return false;  // repeated rows
  // The graph's attention grid covers min(context window, cache slots) tokens.
  const int max_context = std::min(config_.max_position_embeddings, cache.num_slots());
  for (int32_t position : batch.positions) {
    if (position >= max_context) return false;
  }
  std::set<int32_t> seqs(batch.seq_index.begin(), batch.seq_index.end());
  return static_cast<int>(seqs.size()) == batch.n_tokens();  // one token per sequence
}

StatusOr<const float*> CudaLlamaModel::run(const ForwardBatch& batch, CudaKvCache& cache) {
  SW_RETURN_IF_ERROR(validate(batch, cache));
  // The serving engine calls from its own thread; the current device is per thread.
  CUDA_CHECK(cudaSetDevice(device_));
  if (graph_eligible(batch, cache)) return run_decode_graph(batch, cache);

  // Runs of tokens of one sequence become the attention kernels' sequences.
  StepInputs in;
  in.n_tokens = batch.n_tokens();
  in.ids = batch.token_ids;
  in.positions = batch.positions;
  in.slots = batch.slot_mapping;
  in.logit_rows = batch.logit_rows;
  in.table_stride = batch.max_blocks_per_seq;
  for (int t = 0; t < in.n_tokens; ++t) {
    if (t == 0 || batch.seq_index[t] != batch.seq_index[t - 1]) {
      in.query_starts.push_back(t);
      const int32_t* row = batch.block_tables.data() +
                           static_cast<std::size_t>(batch.seq_index[t]) * in.table_stride;
      in.block_tables.insert(in.block_tables.end(), row, row + in.table_stride);
      in.context_lens.push_back(0);
    }
    in.context_lens.back() = batch.positions[t] + 1;
    in.max_context = std::max(in.max_context, batch.positions[t] + 1);
  }
  in.n_seqs = static_cast<int>(in.context_lens.size());
  in.query_starts.push_back(in.n_tokens);
  for (int s = 0; s < in.n_seqs; ++s) {
    in.max_query_len = std::max(in.max_query_len, in.query_starts[s + 1] - in.query_starts[s]);
  }
  in.decode = in.max_query_len == 1;

  const int n_rows = static_cast<int>(batch.logit_rows.size());  // may repeat a row
  ensure_capacity(in.n_tokens, n_rows, in.n_seqs, static_cast<int>(in.block_tables.size()),
                  in.decode ? in.max_context : 0);
  upload_inputs(in);
  const bool all_rows = is_identity(batch.logit_rows, in.n_tokens);
  forward_layers(in.n_tokens, in.n_seqs, in.max_query_len, in.max_context, in.table_stride,
                 in.decode, n_rows, all_rows ? nullptr : buffers_->logit_rows, cache);
  return static_cast<const float*>(buffers_->logits);
}

StatusOr<const float*> CudaLlamaModel::run_decode_graph(const ForwardBatch& batch,
                                                        CudaKvCache& cache) {
  Buffers& b = *buffers_;
  const int n = batch.n_tokens();
  const int bucket = bucket_for(n, options_.max_graph_batch);
  // Graphs are captured per batch bucket and per context bucket (powers of two from one
  // attention partition up to the longest context the cache holds): the attention grid is
  // sized from the context bucket, so short contexts do not launch thousands of idle blocks.
  const int window = std::min(config_.max_position_embeddings, cache.num_slots());
  const int window_blocks = (window + cache.block_size() - 1) / cache.block_size();
  ensure_capacity(options_.max_graph_batch, options_.max_graph_batch, options_.max_graph_batch,
                  options_.max_graph_batch * window_blocks, window);
  int longest = 1;
  for (int32_t position : batch.positions) longest = std::max(longest, position + 1);
  int max_context = cuda::kPartitionTokens;
  while (max_context < longest) max_context *= 2;
  max_context = std::min(max_context, window);
  const int table_stride = (max_context + cache.block_size() - 1) / cache.block_size();
  if (graph_cache_ != cache.id()) {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    graphs_.clear();
    graph_cache_ = cache.id();
  }

  // Padding rows: token 0 at position 0, no cache slot, context 0 (attention writes zeros).
  StepInputs in;
  in.ids.assign(bucket, 0);
  in.positions.assign(bucket, 0);
  in.slots.assign(bucket, -1);
  in.context_lens.assign(bucket, 0);
  in.logit_rows = batch.logit_rows;
  const int used_columns = std::min(batch.max_blocks_per_seq, table_stride);
  in.block_tables.assign(static_cast<std::size_t>(bucket) * table_stride, 0);
  for (int t = 0; t < n; ++t) {
    in.ids[t] = batch.token_ids[t];
    in.positions[t] = batch.positions[t];
    in.slots[t] = batch.slot_mapping[t];
    in.context_lens[t] = batch.positions[t] + 1;
    const int32_t* row = batch.block_tables.data() +
                         static_cast<std::size_t>(batch.seq_index[t]) * batch.max_blocks_per_seq;
    std::copy(row, row + used_columns, in.block_tables.begin() + t * table_stride);
  }
  upload_inputs(in);

  const std::pair<int, int> key(bucket, max_context);
  auto found = graphs_.find(key);
  if (found != graphs_.end()) {
    CUDA_CHECK(cudaGraphLaunch(found->second->exec, stream_));
    // Captured collectives record no events of their own: without this a rank that died
    // during a replayed step would leave this one waiting in cudaStreamSynchronize forever.
    comm_.watch(stream_, "a decode graph replay (its all-reduces and all-gather)");
    ++graph_replays_;
  } else {
    // The first step of a bucket runs eagerly (choosing GEMM algorithms, warming up), then the
    // same launches are captured for later steps.
    forward_layers(bucket, bucket, 1, max_context, table_stride, true, bucket, nullptr, cache);
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    forward_layers(bucket, bucket, 1, max_context, table_stride, true, bucket, nullptr, cache);
    CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    auto captured = std::make_unique<Graph>();
    CUDA_CHECK(cudaGraphInstantiate(&captured->exec, graph, 0));
    CUDA_CHECK(cudaGraphDestroy(graph));
    graphs_[key] = std::move(captured);
    log()->debug("captured the decode graph of batch size {}, contexts up to {}", bucket,
                 max_context);
  }
  if (is_identity(batch.logit_rows, static_cast<int>(batch.logit_rows.size()))) return b.logits;
  cuda::launch_embedding(b.row_logits, b.logits, b.logit_rows,
                         static_cast<int>(batch.logit_rows.size()), config_.vocab_size, stream_);
  return static_cast<const float*>(b.row_logits);
}

StatusOr<std::vector<float>> CudaLlamaModel::forward(const ForwardBatch& batch,
                                                     CudaKvCache& cache) {
  SW_ASSIGN_OR_RETURN(const float* logits, run(batch, cache));
  std::vector<float> host(batch.logit_rows.size() * static_cast<std::size_t>(config_.vocab_size));
  if (!host.empty()) {
    CUDA_CHECK(cudaMemcpyAsync(host.data(), logits, host.size() * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return host;
}

Status CudaLlamaModel::forward_discarding_logits(const ForwardBatch& batch, CudaKvCache& cache) {
  SW_RETURN_IF_ERROR(run(batch, cache).status());
  // The next step's upload reuses the pinned input buffer: this one's copies must be done.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return ok_status();
}

StatusOr<std::vector<int32_t>> CudaLlamaModel::forward_and_sample(
    const ForwardBatch& batch, CudaKvCache& cache, std::span<const cuda::SamplingRow> rows) {
  if (rows.size() != batch.logit_rows.size()) {
    return invalid_argument("{} sampling rows for {} logit rows", rows.size(),
                            batch.logit_rows.size());
  }
  SW_ASSIGN_OR_RETURN(const float* logits, run(batch, cache));
  const int n_rows = static_cast<int>(rows.size());
  std::vector<int32_t> tokens(n_rows);
  if (n_rows == 0) {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return tokens;
  }
  Buffers& b = *buffers_;
  const std::size_t workspace = cuda::sample_workspace_bytes(b.rows, config_.vocab_size);
  if (b.sample_storage.get() == nullptr || workspace > b.sample_workspace_bytes) {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    b.sample_storage = DeviceAllocation();
    const std::size_t rows_bytes = align256(b.rows * sizeof(cuda::SamplingRow));
    const std::size_t tokens_bytes = align256(b.rows * sizeof(int32_t));
    SW_ASSIGN_OR_RETURN(b.sample_storage,
                        DeviceAllocation::make(rows_bytes + tokens_bytes + workspace, "sampling"));
    char* base = static_cast<char*>(b.sample_storage.get());
    b.sample_rows = reinterpret_cast<cuda::SamplingRow*>(base);
    b.sampled = reinterpret_cast<int32_t*>(base + rows_bytes);
    b.sample_workspace = base + rows_bytes + tokens_bytes;
    b.sample_workspace_bytes = workspace;
  }
  CUDA_CHECK(cudaMemcpyAsync(b.sample_rows, rows.data(), rows.size_bytes(), cudaMemcpyHostToDevice,
                             stream_));
  cuda::launch_sample(b.sampled, logits, b.sample_rows, n_rows, config_.vocab_size,
                      b.sample_workspace, stream_);
  CUDA_CHECK(cudaMemcpyAsync(tokens.data(), b.sampled, n_rows * sizeof(int32_t),
                             cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return tokens;
}

StatusOr<std::unique_ptr<CudaLlamaModel>> load_cuda_llama_model(
    const std::filesystem::path& model_dir, DeviceCommunicator& comm,
    const CudaModelOptions& options) {
  if (cuda::device_count() == 0) {
    return failed_precondition("--device cuda: no CUDA device (no GPU or no driver here)");
  }
  SW_ASSIGN_OR_RETURN(LlamaConfig config, load_llama_config(model_dir));
  const TensorParallel tp{comm.rank(), comm.size()};
  SW_ASSIGN_OR_RETURN(std::size_t bytes, cuda_weight_bytes(config, tp, options.dtype));
  std::size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (bytes > free_bytes) {
    return resource_exhausted(
        "{}: this rank's weights take {:.2f} GiB in {}, but the GPU has {:.2f} GiB free of "
        "{:.2f} GiB; use a larger --tp or a smaller model",
        model_dir.string(), bytes / double(1 << 30), dtype_name(options.dtype),
        free_bytes / double(1 << 30), total_bytes / double(1 << 30));
  }
  CudaWeights weights;
  if (options.random_weights) {
    SW_ASSIGN_OR_RETURN(weights, random_cuda_weights(config, tp, options.dtype, options.seed));
  } else {
    SW_ASSIGN_OR_RETURN(weights, load_cuda_weights(model_dir, config, tp, options.dtype));
  }
  return std::make_unique<CudaLlamaModel>(std::move(config), std::move(weights), comm, options);
}

}  // namespace shardwise
