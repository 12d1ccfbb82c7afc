#include "models/llama_weights.h"

#include <fmt/format.h>

#include "common/logging.h"
#include "models/checkpoint.h"

namespace shardwise {

StatusOr<AttentionPartition> AttentionPartition::make(const LlamaConfig& config,
                                                      const TensorParallel& tp) {
  const int heads = config.num_attention_heads;
  const int kv_heads = config.num_key_value_heads;
  if (heads % tp.size != 0) {
    return invalid_argument("--tp {} must divide num_attention_heads ({})", tp.size, heads);
  }
  if (kv_heads % tp.size != 0 && tp.size % kv_heads != 0) {
    return invalid_argument("--tp {} must divide num_key_value_heads ({}) or be a multiple of it",
                            tp.size, kv_heads);
  }
  AttentionPartition partition;
  partition.local_heads = heads / tp.size;
  partition.first_head = tp.rank * partition.local_heads;
  if (tp.size <= kv_heads) {
    partition.local_kv_heads = kv_heads / tp.size;
    partition.first_kv_head = tp.rank * partition.local_kv_heads;
  } else {
    // More ranks than KV heads: tp.size / kv_heads consecutive ranks share one KV head.
    partition.local_kv_heads = 1;
    partition.first_kv_head = tp.rank / (tp.size / kv_heads);
  }
  return partition;
}

const float* LlamaWeights::lm_head_weight(int hidden_size) const {
  if (!lm_head.empty()) return lm_head.data();
  return embed_tokens.data() + vocab.begin * hidden_size;
}

namespace {

// Appends `part` to `whole`: builds fused weights (q|k|v, gate|up) from their pieces.
void append(std::vector<float>& whole, const std::vector<float>& part) {
  whole.insert(whole.end(), part.begin(), part.end());
}

StatusOr<LlamaLayerWeights> load_layer(const Checkpoint& checkpoint, const LlamaConfig& config,
                                       const LlamaWeights& model, int layer) {
  const std::string prefix = fmt::format("model.layers.{}.", layer);
  const int64_t hidden = config.hidden_size;
  const int64_t head_dim = config.head_dim;
  const AttentionPartition& part = model.attention;
  const Range q_rows{part.first_head * head_dim, (part.first_head + part.local_heads) * head_dim};
  const Range kv_rows{part.first_kv_head * head_dim,
                      (part.first_kv_head + part.local_kv_heads) * head_dim};
  const std::vector<int64_t> q_shape{config.num_attention_heads * head_dim, hidden};
  const std::vector<int64_t> kv_shape{config.num_key_value_heads * head_dim, hidden};
  const std::vector<int64_t> ffn_shape{config.intermediate_size, hidden};

  LlamaLayerWeights weights;
  SW_ASSIGN_OR_RETURN(weights.input_norm,
                      checkpoint.read_f32(prefix + "input_layernorm.weight", {hidden}));
  SW_ASSIGN_OR_RETURN(weights.post_attention_norm,
                      checkpoint.read_f32(prefix + "post_attention_layernorm.weight", {hidden}));

  std::vector<float> qkv;
  SW_ASSIGN_OR_RETURN(
      auto q, checkpoint.read_rows_f32(prefix + "self_attn.q_proj.weight", q_shape, q_rows));
  SW_ASSIGN_OR_RETURN(
      auto k, checkpoint.read_rows_f32(prefix + "self_attn.k_proj.weight", kv_shape, kv_rows));
  SW_ASSIGN_OR_RETURN(
      auto v, checkpoint.read_rows_f32(prefix + "self_attn.v_proj.weight", kv_shape, kv_rows));
  append(qkv, q);
  append(qkv, k);
  append(qkv, v);
  const int qkv_rows = static_cast<int>(q_rows.size() + 2 * kv_rows.size());
  weights.qkv = ColumnParallelLinear(std::move(qkv), qkv_rows, static_cast<int>(hidden));

  SW_ASSIGN_OR_RETURN(
      auto o, checkpoint.read_cols_f32(prefix + "self_attn.o_proj.weight",
                                       {hidden, config.num_attention_heads * head_dim}, q_rows));
  weights.o_proj =
      RowParallelLinear(std::move(o), static_cast<int>(hidden), static_cast<int>(q_rows.size()));

  std::vector<float> gate_up;
  SW_ASSIGN_OR_RETURN(auto gate, checkpoint.read_rows_f32(prefix + "mlp.gate_proj.weight",
                                                          ffn_shape, model.intermediate));
  SW_ASSIGN_OR_RETURN(auto up, checkpoint.read_rows_f32(prefix + "mlp.up_proj.weight", ffn_shape,
                                                        model.intermediate));
  append(gate_up, gate);
  append(gate_up, up);
  const int local_ffn = static_cast<int>(model.intermediate.size());
  weights.gate_up =
      ColumnParallelLinear(std::move(gate_up), 2 * local_ffn, static_cast<int>(hidden));

  SW_ASSIGN_OR_RETURN(
      auto down, checkpoint.read_cols_f32(prefix + "mlp.down_proj.weight",
                                          {hidden, config.intermediate_size}, model.intermediate));
  weights.down_proj = RowParallelLinear(std::move(down), static_cast<int>(hidden), local_ffn);
  return weights;
}

}  // namespace

StatusOr<LlamaWeights> load_llama_weights(const std::filesystem::path& model_dir,
                                          const LlamaConfig& config, const TensorParallel& tp) {
  SW_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::open(model_dir));
  LlamaWeights weights;
  SW_ASSIGN_OR_RETURN(weights.attention, AttentionPartition::make(config, tp));
  weights.intermediate = split_range(config.intermediate_size, tp);
  weights.vocab = split_range(config.vocab_size, tp);
  const int64_t hidden = config.hidden_size;

  auto loaded = [&]() -> Status {
    SW_ASSIGN_OR_RETURN(weights.embed_tokens, checkpoint.read_f32("model.embed_tokens.weight",
                                                                  {config.vocab_size, hidden}));
    for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
      log()->debug("loading layer {}/{}", layer + 1, config.num_hidden_layers);
      SW_ASSIGN_OR_RETURN(auto layer_weights, load_layer(checkpoint, config, weights, layer));
      weights.layers.push_back(std::move(layer_weights));
    }
    SW_ASSIGN_OR_RETURN(weights.final_norm, checkpoint.read_f32("model.norm.weight", {hidden}));
    // Some tied checkpoints still store lm_head.weight; the tie decides, as in transformers.
    if (!config.tie_word_embeddings) {
      SW_ASSIGN_OR_RETURN(
          weights.lm_head,
          checkpoint.read_rows_f32("lm_head.weight", {config.vocab_size, hidden}, weights.vocab));
    }
    return ok_status();
  }();
  SW_RETURN_IF_ERROR(loaded.with_context(model_dir.string()));
  return weights;
}

}  // namespace shardwise
