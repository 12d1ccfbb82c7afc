#include "models/llama_weights.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "common/logging.h"

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

std::size_t LlamaWeights::matrix_bytes() const {
  std::size_t bytes = lm_head.weight().bytes();
  for (const LlamaLayerWeights& layer : layers) {
    bytes += layer.qkv.weight().bytes() + layer.o_proj.weight().bytes() +
             layer.gate_up.weight().bytes() + layer.down_proj.weight().bytes();
  }
  return bytes;
}

namespace {

// Gathers rows or columns of checkpoint tensors into one weight matrix.
class MatrixPacker {
 public:
  MatrixPacker(const Checkpoint& checkpoint, const CpuModelOptions& options)
      : checkpoint_(checkpoint), options_(options) {}

  // Rows `rows` of tensor `name` [shape], stacked after the parts added before.
  Status add_rows(const std::string& name, const std::vector<int64_t>& shape, Range rows) {
    SW_ASSIGN_OR_RETURN(const TensorView* view, checkpoint_.find_checked(name, shape));
    const std::size_t element = dtype_size(view->dtype);
    parts_.push_back(
        {view->data + rows.begin * shape[1] * element, view->dtype, rows.size(), shape[1]});
    cols_ = static_cast<int>(shape[1]);
    return ok_status();
  }
  // Columns `cols` of every row of tensor `name` [shape] (a row-parallel rank's slice).
  Status add_cols(const std::string& name, const std::vector<int64_t>& shape, Range cols) {
    SW_ASSIGN_OR_RETURN(const TensorView* view, checkpoint_.find_checked(name, shape));
    parts_.push_back(
        {view->data + cols.begin * dtype_size(view->dtype), view->dtype, shape[0], shape[1]});
    cols_ = static_cast<int>(cols.size());
    return ok_status();
  }
  // The matrix: the mmapped rows themselves when they keep their stored type (nothing is
  // copied), else packed, converted or quantised, while their pages leave the resident set.
  cpu::WeightMatrix matrix() {
    const cpu::WeightType stored = cpu::weight_type_of(parts_.front().dtype);
    const cpu::WeightType type = options_.weight_type.value_or(stored);
    if (type == stored) return cpu::WeightMatrix::row_major(std::exchange(parts_, {}), cols_);
    cpu::PackedMatrix packed =
        cpu::PackedMatrix::pack(parts_, cols_, type, [&](int64_t begin, int64_t end) {
          for (const cpu::MatrixRows& part : parts_) {
            const int64_t first = std::max<int64_t>(begin, 0), last = std::min(end, part.rows);
            if (first < last) {
              // From the first used element of row `first` to the last of row `last - 1`.
              const std::size_t element = dtype_size(part.dtype);
              const std::size_t row_bytes = part.row_stride * element;
              release_pages(part.data + first * row_bytes,
                            (last - first - 1) * row_bytes + cols_ * element);
            }
            begin -= part.rows;
            end -= part.rows;
          }
        });
    parts_.clear();
    return cpu::WeightMatrix::packed(std::move(packed));
  }

 private:
  const Checkpoint& checkpoint_;
  const CpuModelOptions& options_;
  std::vector<cpu::MatrixRows> parts_;
  int cols_ = 0;
};

StatusOr<LlamaLayerWeights> load_layer(const Checkpoint& checkpoint, const LlamaConfig& config,
                                       const LlamaWeights& model, int layer,
                                       const CpuModelOptions& options) {
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

  MatrixPacker packer(checkpoint, options);
  SW_RETURN_IF_ERROR(packer.add_rows(prefix + "self_attn.q_proj.weight", q_shape, q_rows));
  SW_RETURN_IF_ERROR(packer.add_rows(prefix + "self_attn.k_proj.weight", kv_shape, kv_rows));
  SW_RETURN_IF_ERROR(packer.add_rows(prefix + "self_attn.v_proj.weight", kv_shape, kv_rows));
  weights.qkv = ColumnParallelLinear(packer.matrix(), options.isa);

  SW_RETURN_IF_ERROR(packer.add_cols(prefix + "self_attn.o_proj.weight",
                                     {hidden, config.num_attention_heads * head_dim}, q_rows));
  weights.o_proj = RowParallelLinear(packer.matrix(), options.isa);

  SW_RETURN_IF_ERROR(
      packer.add_rows(prefix + "mlp.gate_proj.weight", ffn_shape, model.intermediate));
  SW_RETURN_IF_ERROR(packer.add_rows(prefix + "mlp.up_proj.weight", ffn_shape, model.intermediate));
  weights.gate_up = ColumnParallelLinear(packer.matrix(), options.isa);

  SW_RETURN_IF_ERROR(packer.add_cols(prefix + "mlp.down_proj.weight",
                                     {hidden, config.intermediate_size}, model.intermediate));
  weights.down_proj = RowParallelLinear(packer.matrix(), options.isa);
  return weights;
}

}  // namespace

StatusOr<LlamaWeights> load_llama_weights(const std::filesystem::path& model_dir,
                                          const LlamaConfig& config, const TensorParallel& tp,
                                          const CpuModelOptions& options) {
  SW_ASSIGN_OR_RETURN(Checkpoint opened, Checkpoint::open(model_dir));
  auto checkpoint = std::make_shared<const Checkpoint>(std::move(opened));
  LlamaWeights weights;
  weights.checkpoint = checkpoint;
  SW_ASSIGN_OR_RETURN(weights.attention, AttentionPartition::make(config, tp));
  // At int8-block boundaries: a row-parallel rank's slice of down_proj is whole blocks, so that
  // int8 weights and inputs are quantised in the same blocks as at TP=1.
  weights.intermediate = split_range(config.intermediate_size, tp, cpu::PackedMatrix::kInt8Block);
  weights.vocab = split_range(config.vocab_size, tp);
  const int64_t hidden = config.hidden_size;

  auto loaded = [&]() -> Status {
    const std::vector<int64_t> vocab_shape{config.vocab_size, hidden};
    SW_ASSIGN_OR_RETURN(weights.embed_tokens,
                        checkpoint->find_checked("model.embed_tokens.weight", vocab_shape));
    for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
      log()->debug("loading layer {}/{}", layer + 1, config.num_hidden_layers);
      SW_ASSIGN_OR_RETURN(auto layer_weights,
                          load_layer(*checkpoint, config, weights, layer, options));
      weights.layers.push_back(std::move(layer_weights));
    }
    SW_ASSIGN_OR_RETURN(weights.final_norm, checkpoint->read_f32("model.norm.weight", {hidden}));
    // Some tied checkpoints still store lm_head.weight; the tie decides, as in transformers.
    MatrixPacker packer(*checkpoint, options);
    SW_RETURN_IF_ERROR(
        packer.add_rows(config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight",
                        vocab_shape, weights.vocab));
    weights.lm_head = ColumnParallelLinear(packer.matrix(), options.isa);
    return ok_status();
  }();
  SW_RETURN_IF_ERROR(loaded.with_context(model_dir.string()));
  return weights;
}

}  // namespace shardwise
