#include "models/cuda_weights.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cmath>

#include "common/check.h"
#include "common/hash.h"
#include "common/logging.h"
#include "kernels/cuda/fill_random.h"
#include "models/checkpoint.h"

namespace shardwise {

StatusOr<DeviceAllocation> DeviceAllocation::make(std::size_t bytes, const char* what) {
  DeviceAllocation allocation;
  if (bytes == 0) return allocation;
  if (cudaMalloc(&allocation.data_, bytes) != cudaSuccess) {
    cudaGetLastError();  // clear the error: this one is reported as a Status
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    return resource_exhausted("{} needs {:.2f} GiB of GPU memory; {:.2f} GiB of {:.2f} GiB free",
                              what, bytes / double(1 << 30), free_bytes / double(1 << 30),
                              total_bytes / double(1 << 30));
  }
  allocation.bytes_ = bytes;
  return allocation;
}

DeviceAllocation::~DeviceAllocation() {
  if (data_ != nullptr) cudaFree(data_);
}

DeviceAllocation::DeviceAllocation(DeviceAllocation&& other) noexcept
    : data_(other.data_), bytes_(other.bytes_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

DeviceAllocation& DeviceAllocation::operator=(DeviceAllocation&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) cudaFree(data_);
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

namespace {

// The shapes of one rank's tensors, and where each lies in the one allocation.
struct Shapes {
  int64_t hidden, head_dim, q_rows, kv_rows, local_ffn, vocab, padded_local_vocab;
};

Shapes shapes_of(const LlamaConfig& config, const CudaWeights& w) {
  Shapes s;
  s.hidden = config.hidden_size;
  s.head_dim = config.head_dim;
  s.q_rows = static_cast<int64_t>(w.attention.local_heads) * config.head_dim;
  s.kv_rows = static_cast<int64_t>(w.attention.local_kv_heads) * config.head_dim;
  s.local_ffn = w.intermediate.size();
  s.vocab = config.vocab_size;
  s.padded_local_vocab = w.padded_local_vocab;
  return s;
}

// Sets every tensor pointer of `w` to base + its offset; returns the bytes they span.
std::size_t place_tensors(CudaWeights& w, const Shapes& s, int n_layers, char* base) {
  const std::size_t element = dtype_size(w.dtype);
  std::size_t offset = 0;
  auto take = [&](int64_t elements) -> void* {
    void* p = base + offset;
    offset += (static_cast<std::size_t>(elements) * element + 255) / 256 * 256;
    return p;
  };
  w.embed_tokens = take(s.vocab * s.hidden);
  w.layers.resize(n_layers);
  for (CudaLayerWeights& layer : w.layers) {
    layer.input_norm = take(s.hidden);
    layer.qkv = take((s.q_rows + 2 * s.kv_rows) * s.hidden);
    layer.o_proj = take(s.hidden * s.q_rows);
    layer.post_attention_norm = take(s.hidden);
    layer.gate_up = take(2 * s.local_ffn * s.hidden);
    layer.down_proj = take(s.hidden * s.local_ffn);
  }
  w.final_norm = take(s.hidden);
  w.lm_head = take(s.padded_local_vocab * s.hidden);
  return offset;
}

// Lays out this rank's tensors in one zeroed device allocation.
StatusOr<CudaWeights> allocate(const LlamaConfig& config, const TensorParallel& tp, DType dtype) {
  if (dtype != DType::kBF16 && dtype != DType::kF32) {
    return invalid_argument("the CUDA model computes in BF16 or F32, not {}", dtype_name(dtype));
  }
  CudaWeights w;
  w.dtype = dtype;
  SW_ASSIGN_OR_RETURN(w.attention, AttentionPartition::make(config, tp));
  w.intermediate = split_range(config.intermediate_size, tp);
  w.vocab = split_range(config.vocab_size, tp);
  w.padded_local_vocab = (config.vocab_size + tp.size - 1) / tp.size;
  const Shapes s = shapes_of(config, w);
  const std::size_t bytes = place_tensors(w, s, config.num_hidden_layers, nullptr);
  SW_ASSIGN_OR_RETURN(w.storage, DeviceAllocation::make(bytes, "the model's weights"));
  place_tensors(w, s, config.num_hidden_layers, static_cast<char*>(w.storage.get()));
  CUDA_CHECK(cudaMemset(w.storage.get(), 0, bytes));  // lm_head's padding rows stay zero
  return w;
}

// Converts fp32 host values to `dtype` and copies them to `dst`.
void upload(void* dst, const std::vector<float>& host, DType dtype) {
  if (dtype == DType::kF32) {
    CUDA_CHECK(cudaMemcpy(dst, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    return;
  }
  std::vector<__nv_bfloat16> converted(host.size());
  for (std::size_t i = 0; i < host.size(); ++i) converted[i] = __float2bfloat16(host[i]);
  CUDA_CHECK(cudaMemcpy(dst, converted.data(), converted.size() * sizeof(__nv_bfloat16),
                        cudaMemcpyHostToDevice));
}

void* advance(void* p, int64_t elements, DType dtype) {
  return static_cast<char*>(p) + static_cast<std::size_t>(elements) * dtype_size(dtype);
}

// The lm_head rows of a tied model are this rank's slice of embed_tokens.
void copy_tied_lm_head(CudaWeights& w, const Shapes& s) {
  CUDA_CHECK(cudaMemcpy(w.lm_head, advance(w.embed_tokens, w.vocab.begin * s.hidden, w.dtype),
                        static_cast<std::size_t>(w.vocab.size() * s.hidden) * dtype_size(w.dtype),
                        cudaMemcpyDeviceToDevice));
}

Status load_layer(const Checkpoint& checkpoint, const LlamaConfig& config, const Shapes& s,
                  CudaWeights& w, int layer) {
  const std::string prefix = fmt::format("model.layers.{}.", layer);
  const CudaLayerWeights& d = w.layers[layer];
  const AttentionPartition& part = w.attention;
  const Range q_rows{part.first_head * s.head_dim,
                     (part.first_head + part.local_heads) * s.head_dim};
  const Range kv_rows{part.first_kv_head * s.head_dim,
                      (part.first_kv_head + part.local_kv_heads) * s.head_dim};
  const std::vector<int64_t> q_shape{config.num_attention_heads * s.head_dim, s.hidden};
  const std::vector<int64_t> kv_shape{config.num_key_value_heads * s.head_dim, s.hidden};
  const std::vector<int64_t> ffn_shape{config.intermediate_size, s.hidden};
  const DType dt = w.dtype;

  SW_ASSIGN_OR_RETURN(auto input_norm,
                      checkpoint.read_f32(prefix + "input_layernorm.weight", {s.hidden}));
  upload(d.input_norm, input_norm, dt);
  SW_ASSIGN_OR_RETURN(auto post_norm,
                      checkpoint.read_f32(prefix + "post_attention_layernorm.weight", {s.hidden}));
  upload(d.post_attention_norm, post_norm, dt);

  SW_ASSIGN_OR_RETURN(
      auto q, checkpoint.read_rows_f32(prefix + "self_attn.q_proj.weight", q_shape, q_rows));
  upload(d.qkv, q, dt);
  SW_ASSIGN_OR_RETURN(
      auto k, checkpoint.read_rows_f32(prefix + "self_attn.k_proj.weight", kv_shape, kv_rows));
  upload(advance(d.qkv, s.q_rows * s.hidden, dt), k, dt);
  SW_ASSIGN_OR_RETURN(
      auto v, checkpoint.read_rows_f32(prefix + "self_attn.v_proj.weight", kv_shape, kv_rows));
  upload(advance(d.qkv, (s.q_rows + s.kv_rows) * s.hidden, dt), v, dt);
  SW_ASSIGN_OR_RETURN(auto o, checkpoint.read_cols_f32(
                                  prefix + "self_attn.o_proj.weight",
                                  {s.hidden, config.num_attention_heads * s.head_dim}, q_rows));
  upload(d.o_proj, o, dt);

  SW_ASSIGN_OR_RETURN(auto gate, checkpoint.read_rows_f32(prefix + "mlp.gate_proj.weight",
                                                          ffn_shape, w.intermediate));
  upload(d.gate_up, gate, dt);
  SW_ASSIGN_OR_RETURN(
      auto up, checkpoint.read_rows_f32(prefix + "mlp.up_proj.weight", ffn_shape, w.intermediate));
  upload(advance(d.gate_up, s.local_ffn * s.hidden, dt), up, dt);
  SW_ASSIGN_OR_RETURN(
      auto down, checkpoint.read_cols_f32(prefix + "mlp.down_proj.weight",
                                          {s.hidden, config.intermediate_size}, w.intermediate));
  upload(d.down_proj, down, dt);
  return ok_status();
}

void fill_uniform(void* out, DType dtype, int64_t rows, int64_t cols, int64_t global_cols,
                  int64_t row_offset, int64_t col_offset, float scale, uint64_t seed) {
  if (dtype == DType::kF32) {
    cuda::launch_fill_uniform(static_cast<float*>(out), rows, cols, global_cols, row_offset,
                              col_offset, scale, seed, nullptr);
  } else {
    cuda::launch_fill_uniform(static_cast<__nv_bfloat16*>(out), rows, cols, global_cols, row_offset,
                              col_offset, scale, seed, nullptr);
  }
}

void fill_ones(void* out, DType dtype, int64_t count) {
  if (dtype == DType::kF32) {
    cuda::launch_fill_constant(static_cast<float*>(out), count, 1.0f, nullptr);
  } else {
    cuda::launch_fill_constant(static_cast<__nv_bfloat16*>(out), count, 1.0f, nullptr);
  }
}

}  // namespace

StatusOr<std::size_t> cuda_weight_bytes(const LlamaConfig& config, const TensorParallel& tp,
                                        DType dtype) {
  CudaWeights w;
  w.dtype = dtype;
  SW_ASSIGN_OR_RETURN(w.attention, AttentionPartition::make(config, tp));
  w.intermediate = split_range(config.intermediate_size, tp);
  w.padded_local_vocab = (config.vocab_size + tp.size - 1) / tp.size;
  return place_tensors(w, shapes_of(config, w), config.num_hidden_layers, nullptr);
}

StatusOr<CudaWeights> load_cuda_weights(const std::filesystem::path& model_dir,
                                        const LlamaConfig& config, const TensorParallel& tp,
                                        DType dtype) {
  SW_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::open(model_dir));
  SW_ASSIGN_OR_RETURN(CudaWeights w, allocate(config, tp, dtype));
  const Shapes s = shapes_of(config, w);
  auto loaded = [&]() -> Status {
    SW_ASSIGN_OR_RETURN(auto embed, checkpoint.read_f32("model.embed_tokens.weight",
                                                        {config.vocab_size, s.hidden}));
    upload(w.embed_tokens, embed, dtype);
    for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
      log()->debug("loading layer {}/{} to the GPU", layer + 1, config.num_hidden_layers);
      SW_RETURN_IF_ERROR(load_layer(checkpoint, config, s, w, layer));
    }
    SW_ASSIGN_OR_RETURN(auto final_norm, checkpoint.read_f32("model.norm.weight", {s.hidden}));
    upload(w.final_norm, final_norm, dtype);
    // Some tied checkpoints still store lm_head.weight; the tie decides, as in transformers.
    if (config.tie_word_embeddings) {
      copy_tied_lm_head(w, s);
    } else {
      SW_ASSIGN_OR_RETURN(
          auto lm_head,
          checkpoint.read_rows_f32("lm_head.weight", {config.vocab_size, s.hidden}, w.vocab));
      upload(w.lm_head, lm_head, dtype);
    }
    return ok_status();
  }();
  SW_RETURN_IF_ERROR(loaded.with_context(model_dir.string()));
  CUDA_CHECK(cudaDeviceSynchronize());  // every upload landed before any stream reads them
  return w;
}

StatusOr<CudaWeights> random_cuda_weights(const LlamaConfig& config, const TensorParallel& tp,
                                          DType dtype, uint64_t seed) {
  SW_ASSIGN_OR_RETURN(CudaWeights w, allocate(config, tp, dtype));
  const Shapes s = shapes_of(config, w);
  const AttentionPartition& part = w.attention;
  const int64_t q_global = static_cast<int64_t>(config.num_attention_heads) * s.head_dim;
  const float in_hidden = 1.0f / std::sqrt(static_cast<float>(s.hidden));
  // One seed per tensor: (seed, layer, tensor) hashed.
  auto seed_of = [&](int layer, int tensor) {
    return mix64(seed ^ mix64(static_cast<uint64_t>(layer + 1) * 16 + tensor));
  };
  const DType dt = dtype;
  fill_uniform(w.embed_tokens, dt, s.vocab, s.hidden, s.hidden, 0, 0, 1.0f, seed_of(-1, 0));
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    const CudaLayerWeights& d = w.layers[layer];
    fill_ones(d.input_norm, dt, s.hidden);
    fill_ones(d.post_attention_norm, dt, s.hidden);
    const int64_t q_begin = part.first_head * s.head_dim;
    const int64_t kv_begin = part.first_kv_head * s.head_dim;
    fill_uniform(d.qkv, dt, s.q_rows, s.hidden, s.hidden, q_begin, 0, in_hidden, seed_of(layer, 0));
    fill_uniform(advance(d.qkv, s.q_rows * s.hidden, dt), dt, s.kv_rows, s.hidden, s.hidden,
                 kv_begin, 0, in_hidden, seed_of(layer, 1));
    fill_uniform(advance(d.qkv, (s.q_rows + s.kv_rows) * s.hidden, dt), dt, s.kv_rows, s.hidden,
                 s.hidden, kv_begin, 0, in_hidden, seed_of(layer, 2));
    fill_uniform(d.o_proj, dt, s.hidden, s.q_rows, q_global, 0, q_begin,
                 1.0f / std::sqrt(static_cast<float>(q_global)), seed_of(layer, 3));
    fill_uniform(d.gate_up, dt, s.local_ffn, s.hidden, s.hidden, w.intermediate.begin, 0, in_hidden,
                 seed_of(layer, 4));
    fill_uniform(advance(d.gate_up, s.local_ffn * s.hidden, dt), dt, s.local_ffn, s.hidden,
                 s.hidden, w.intermediate.begin, 0, in_hidden, seed_of(layer, 5));
    fill_uniform(d.down_proj, dt, s.hidden, s.local_ffn, config.intermediate_size, 0,
                 w.intermediate.begin,
                 1.0f / std::sqrt(static_cast<float>(config.intermediate_size)), seed_of(layer, 6));
  }
  fill_ones(w.final_norm, dt, s.hidden);
  if (config.tie_word_embeddings) {
    copy_tied_lm_head(w, s);
  } else {
    fill_uniform(w.lm_head, dt, w.vocab.size(), s.hidden, s.hidden, w.vocab.begin, 0, in_hidden,
                 seed_of(-1, 1));
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  return w;
}

}  // namespace shardwise
