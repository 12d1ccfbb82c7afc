#include "models/cuda_llama_model.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <set>

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

bool is_identity(const std::vector<int32_t>& rows, int n) {
  if (static_cast<int>(rows.size()) != n) return false;
  for (int i = 0; i < n; ++i) {
    if (rows[i] != i) return false;
  }
  return true;
}

StepBufferShapes step_shapes(const LlamaConfig& config, const CudaWeights& weights, int tp,
                             const CudaModelOptions& options) {
  StepBufferShapes s;
  s.dtype = options.dtype;
  s.hidden = config.hidden_size;
  s.head_dim = config.head_dim;
  s.local_heads = weights.attention.local_heads;
  s.local_kv_heads = weights.attention.local_kv_heads;
  s.local_ffn = weights.intermediate.size();
  s.padded_local_vocab = weights.padded_local_vocab;
  s.vocab = config.vocab_size;
  s.tp = tp;
  s.max_graph_batch = options.max_graph_batch;
  return s;
}

}  // namespace

CudaLlamaModel::CudaLlamaModel(LlamaConfig config, CudaWeights weights, DeviceCommunicator& comm,
                               CudaModelOptions options)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      comm_(comm),
      options_(options),
      buffers_(step_shapes(config_, weights_, comm.size(), options)) {
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
  SW_RETURN_IF_ERROR(validate_batch(config_, {cache.num_blocks(), cache.block_size()}, batch));
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

StatusOr<bool> CudaLlamaModel::reserve(const ForwardBatch& batch, const CudaKvCache& cache) {
  StepDims dims;
  if (graph_eligible(batch, cache)) {
    dims = graph_dims(cache);
  } else {
    const CudaStepInputs in = eager_inputs(batch);
    dims = {in.n_tokens, static_cast<int>(in.logit_rows.size()), in.n_seqs,
            static_cast<int>(in.block_tables.size()), in.decode ? in.max_context : 0};
  }
  if (!buffers_.needs_growth(dims)) return false;
  // Growing moves buffers that captured graphs point at.
  CUDA_CHECK(cudaSetDevice(device_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  graphs_.clear();
  SW_RETURN_IF_ERROR(buffers_.grow(dims));
  return true;
}

void CudaLlamaModel::release_step_buffers() {
  CUDA_CHECK(cudaSetDevice(device_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  graphs_.clear();
  buffers_.release();
}

void CudaLlamaModel::add_and_norm(const void* weight, int n_tokens, bool first) {
  CudaStepBuffers& b = buffers_;
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
  CudaStepBuffers& b = buffers_;
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
      cuda::launch_paged_attention_decode(
          typed<T>(b.attended), q, typed<T>(cache.k(layer)), typed<T>(cache.v(layer)),
          b.block_tables, b.context_lens, n_seqs, heads, kv_heads, head_dim, qkv_width,
          cache.block_size(), table_stride, max_context, scale, b.attention_workspace, stream_);
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
  CudaStepBuffers& b = buffers_;
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
  CudaStepBuffers& b = buffers_;
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
  CudaStepBuffers& b = buffers_;
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

CudaStepInputs CudaLlamaModel::eager_inputs(const ForwardBatch& batch) const {
  CudaStepInputs in;
  in.n_tokens = batch.n_tokens();
  in.ids = batch.token_ids;
  in.positions = batch.positions;
  in.slots = batch.slot_mapping;
  in.logit_rows = batch.logit_rows;  // may repeat a row
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
  return in;
}

StepDims CudaLlamaModel::graph_dims(const CudaKvCache& cache) const {
  // Every graph step uses the buffers of the largest bucket and the longest context.
  const int window = std::min(config_.max_position_embeddings, cache.num_slots());
  const int window_blocks = (window + cache.block_size() - 1) / cache.block_size();
  const int n = options_.max_graph_batch;
  return {n, n, n, n * window_blocks, window};
}

StatusOr<const float*> CudaLlamaModel::run(const ForwardBatch& batch, CudaKvCache& cache) {
  SW_RETURN_IF_ERROR(validate(batch, cache));
  // The serving engine calls from its own thread; the current device is per thread.
  CUDA_CHECK(cudaSetDevice(device_));
  SW_RETURN_IF_ERROR(reserve(batch, cache).status());
  if (graph_eligible(batch, cache)) return run_decode_graph(batch, cache);

  const CudaStepInputs in = eager_inputs(batch);
  buffers_.upload(in, stream_);
  const bool all_rows = is_identity(batch.logit_rows, in.n_tokens);
  forward_layers(in.n_tokens, in.n_seqs, in.max_query_len, in.max_context, in.table_stride,
                 in.decode, static_cast<int>(in.logit_rows.size()),
                 all_rows ? nullptr : buffers_.logit_rows, cache);
  return static_cast<const float*>(buffers_.logits);
}

StatusOr<const float*> CudaLlamaModel::run_decode_graph(const ForwardBatch& batch,
                                                        CudaKvCache& cache) {
  CudaStepBuffers& b = buffers_;
  const int n = batch.n_tokens();
  const int bucket = CudaDecodeGraphs::batch_bucket(n, options_.max_graph_batch);
  const int window = std::min(config_.max_position_embeddings, cache.num_slots());
  int longest = 1;
  for (int32_t position : batch.positions) longest = std::max(longest, position + 1);
  const int max_context = CudaDecodeGraphs::context_bucket(longest, window);
  const int table_stride = (max_context + cache.block_size() - 1) / cache.block_size();
  graphs_.use_cache(cache.id(), stream_);

  // Padding rows: token 0 at position 0, no cache slot, context 0 (attention writes zeros).
  CudaStepInputs in;
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
  b.upload(in, stream_);

  const bool replayed = graphs_.replay_or_capture({bucket, max_context}, stream_, [&] {
    forward_layers(bucket, bucket, 1, max_context, table_stride, true, bucket, nullptr, cache);
  });
  if (replayed) {
    // Captured collectives record no events of their own: without this a rank that died
    // during a replayed step would leave this one waiting in cudaStreamSynchronize forever.
    comm_.watch(stream_, "a decode graph replay (its all-reduces and all-gather)");
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
  CudaStepBuffers& b = buffers_;
  SW_RETURN_IF_ERROR(b.reserve_sampling(n_rows, stream_));
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
