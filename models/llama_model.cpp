#include "models/llama_model.h"

#include <cmath>
#include <cstring>

#include "common/logging.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/kv_cache_write.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/rms_norm.h"
#include "kernels/cpu/rotary.h"
#include "kernels/cpu/silu_and_mul.h"

namespace shardwise {

namespace {

// The buffer, grown to hold `size` elements (never shrunk, so steady-state steps allocate nothing).
template <typename T>
T* sized(std::vector<T>& buffer, std::size_t size) {
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

}  // namespace

LlamaModel::LlamaModel(LlamaConfig config, LlamaWeights weights, Communicator& comm,
                       CpuModelOptions options)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      comm_(comm),
      options_(std::move(options)) {
  inv_freq_.resize(config_.head_dim / 2);
  cpu::rope_inv_freq(inv_freq_.data(), config_.head_dim, config_.rope);
}

PagedKvCache LlamaModel::make_kv_cache(int num_blocks, int block_size) const {
  return PagedKvCache(config_.num_hidden_layers, num_blocks, block_size,
                      weights_.attention.local_kv_heads, config_.head_dim, options_.kv_cache);
}

Status LlamaModel::validate(const ForwardBatch& batch, const PagedKvCache& cache) const {
  return validate_batch(config_, {cache.num_blocks(), cache.block_size()}, batch);
}

void LlamaModel::attention_block(int layer, const ForwardBatch& batch, const float* normed,
                                 float* out, PagedKvCache& cache) {
  const LlamaLayerWeights& w = weights_.layers[layer];
  const int n_tokens = batch.n_tokens();
  const int head_dim = config_.head_dim;
  const int heads = weights_.attention.local_heads;
  const int kv_heads = weights_.attention.local_kv_heads;
  const std::size_t q_width = static_cast<std::size_t>(heads) * head_dim;
  const std::size_t kv_width = static_cast<std::size_t>(kv_heads) * head_dim;
  const std::size_t qkv_width = q_width + 2 * kv_width;

  float* qkv = sized(act_.qkv, n_tokens * qkv_width);  // [n_tokens, q | k | v]
  w.qkv.forward(qkv, normed, n_tokens);
  float* q = sized(act_.q, n_tokens * q_width);
  float* k = sized(act_.k, n_tokens * kv_width);
  float* v = sized(act_.v, n_tokens * kv_width);
  for (int t = 0; t < n_tokens; ++t) {
    const float* row = qkv + t * qkv_width;
    std::memcpy(q + t * q_width, row, q_width * sizeof(float));
    std::memcpy(k + t * kv_width, row + q_width, kv_width * sizeof(float));
    std::memcpy(v + t * kv_width, row + q_width + kv_width, kv_width * sizeof(float));
  }
  cpu::apply_rotary(q, k, batch.positions.data(), inv_freq_.data(), n_tokens, heads, kv_heads,
                    head_dim);

  int32_t* context_lens = sized(act_.context_lens, n_tokens);
  for (int t = 0; t < n_tokens; ++t) context_lens[t] = batch.positions[t] + 1;
  float* attended = sized(act_.attended, n_tokens * q_width);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  if (cache.type() == KvCacheType::kBF16) {
    cpu::kv_cache_write(cache.k_bf16(layer), cache.v_bf16(layer), k, v, batch.slot_mapping.data(),
                        n_tokens, kv_heads, head_dim);
    cpu::paged_attention(attended, q, cache.k_bf16(layer), cache.v_bf16(layer),
                         batch.block_tables.data(), batch.seq_index.data(), context_lens, n_tokens,
                         heads, kv_heads, head_dim, cache.block_size(), batch.max_blocks_per_seq,
                         scale, options_.isa);
  } else {
    cpu::kv_cache_write(cache.k(layer), cache.v(layer), k, v, batch.slot_mapping.data(), n_tokens,
                        kv_heads, head_dim);
    cpu::paged_attention(attended, q, cache.k(layer), cache.v(layer), batch.block_tables.data(),
                         batch.seq_index.data(), context_lens, n_tokens, heads, kv_heads, head_dim,
                         cache.block_size(), batch.max_blocks_per_seq, scale, options_.isa);
  }
  w.o_proj.forward(out, attended, n_tokens, comm_);
}

void LlamaModel::mlp_block(int layer, const float* normed, float* out, int n_tokens) {
  const LlamaLayerWeights& w = weights_.layers[layer];
  const int local_ffn = static_cast<int>(weights_.intermediate.size());
  float* gate_up = sized(act_.gate_up, static_cast<std::size_t>(n_tokens) * 2 * local_ffn);
  w.gate_up.forward(gate_up, normed, n_tokens);
  float* activated = sized(act_.activated, static_cast<std::size_t>(n_tokens) * local_ffn);
  cpu::silu_and_mul(activated, gate_up, n_tokens, local_ffn);
  w.down_proj.forward(out, activated, n_tokens, comm_);
}

std::vector<float> LlamaModel::gather_logits(std::vector<float> local_logits, int n_rows) {
  const int vocab = config_.vocab_size;
  if (comm_.size() == 1) return local_logits;
  // Each rank holds [n_rows, its vocabulary slice]; gather rank-major, then interleave rows.
  std::vector<std::size_t> counts(comm_.size());
  std::vector<Range> slices(comm_.size());
  for (int r = 0; r < comm_.size(); ++r) {
    slices[r] = split_range(vocab, TensorParallel{r, comm_.size()});
    counts[r] = static_cast<std::size_t>(n_rows) * slices[r].size();
  }
  std::vector<float> gathered(static_cast<std::size_t>(n_rows) * vocab);
  comm_.all_gather(local_logits.data(), counts, gathered.data());
  std::vector<float> logits(gathered.size());
  std::size_t offset = 0;
  for (int r = 0; r < comm_.size(); ++r) {
    for (int row = 0; row < n_rows; ++row) {
      std::memcpy(logits.data() + static_cast<std::size_t>(row) * vocab + slices[r].begin,
                  gathered.data() + offset, slices[r].size() * sizeof(float));
      offset += slices[r].size();
    }
  }
  return logits;
}

StatusOr<std::vector<float>> LlamaModel::forward(const ForwardBatch& batch, PagedKvCache& cache) {
  SW_RETURN_IF_ERROR(validate(batch, cache));
  const int n_tokens = batch.n_tokens();
  const int hidden = config_.hidden_size;
  const float eps = config_.rms_norm_eps;
  const std::size_t activations = static_cast<std::size_t>(n_tokens) * hidden;

  float* residual = sized(act_.residual, activations);  // the residual stream
  float* normed = sized(act_.normed, activations);
  float* sublayer_out = sized(act_.sublayer_out, activations);
  cpu::embedding_lookup(residual, weights_.embed_tokens->data, weights_.embed_tokens->dtype,
                        batch.token_ids.data(), n_tokens, hidden);
  // Each sub-layer's output is added to the residual stream by the next norm (fused).
  bool pending = false;
  auto add_and_norm = [&](const std::vector<float>& weight) {
    if (pending) {
      cpu::fused_add_rms_norm(normed, residual, sublayer_out, weight.data(), n_tokens, hidden, eps);
    } else {
      cpu::rms_norm(normed, residual, weight.data(), n_tokens, hidden, eps);
    }
    pending = true;
  };
  for (int layer = 0; layer < config_.num_hidden_layers; ++layer) {
    add_and_norm(weights_.layers[layer].input_norm);
    attention_block(layer, batch, normed, sublayer_out, cache);
    add_and_norm(weights_.layers[layer].post_attention_norm);
    mlp_block(layer, normed, sublayer_out, n_tokens);
  }
  add_and_norm(weights_.final_norm);

  // Only the rows whose next token is wanted go through the lm_head.
  const int n_rows = static_cast<int>(batch.logit_rows.size());
  std::vector<float> local_logits(static_cast<std::size_t>(n_rows) * weights_.vocab.size());
  if (n_rows > 0) {
    float* rows = sized(act_.logit_rows, static_cast<std::size_t>(n_rows) * hidden);
    for (int r = 0; r < n_rows; ++r) {
      std::memcpy(rows + static_cast<std::size_t>(r) * hidden,
                  normed + static_cast<std::size_t>(batch.logit_rows[r]) * hidden,
                  sizeof(float) * hidden);
    }
    weights_.lm_head.forward(local_logits.data(), rows, n_rows);
  }
  std::vector<float> out = gather_logits(std::move(local_logits), n_rows);
  append_hidden_rows(batch, normed, hidden, out);
  return out;
}

StatusOr<std::unique_ptr<LlamaModel>> load_llama_model(const std::filesystem::path& model_dir,
                                                       Communicator& comm,
                                                       const CpuModelOptions& options) {
  SW_ASSIGN_OR_RETURN(LlamaConfig config, load_llama_config(model_dir));
  const TensorParallel tp{comm.rank(), comm.size()};
  SW_ASSIGN_OR_RETURN(LlamaWeights weights, load_llama_weights(model_dir, config, tp, options));
  return std::make_unique<LlamaModel>(std::move(config), std::move(weights), comm, options);
}

}  // namespace shardwise
