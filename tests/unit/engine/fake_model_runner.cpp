#include "tests/unit/engine/fake_model_runner.h"

#include <algorithm>

#include "common/hash.h"

namespace shardwise::testing {
std::vector<float> fake_logits(std::span<const int32_t> prefix, int vocab) {
  uint64_t hash = 0;
  for (int32_t token : prefix) hash = mix64(hash ^ static_cast<uint32_t>(token));
  std::vector<float> logits(vocab);
  for (int v = 0; v < vocab; ++v) logits[v] = static_cast<float>(mix64(hash + v) % 10007) / 1000.0f;
  return logits;
}

std::vector<int32_t> fake_greedy(std::vector<int32_t> prompt, int max_tokens,
                                 const std::vector<int32_t>& stop_ids, int vocab) {
  std::vector<int32_t> out;
  while (static_cast<int>(out.size()) < max_tokens) {
    const auto logits = fake_logits(prompt, vocab);
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(token);
    prompt.push_back(token);
    if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) break;
  }
  return out;
}

FakeModelRunner::FakeModelRunner(int num_blocks, int block_size, int vocab, int context)
    : num_blocks_(num_blocks), block_size_(block_size), slots_(num_blocks * block_size, -1) {
  config_.vocab_size = vocab;
  config_.max_position_embeddings = context;
  config_.eos_token_ids = {2};
}

Status FakeModelRunner::validate(const ForwardBatch& batch) const {
  const int n = batch.n_tokens();
  if (n == 0) return invalid_argument("empty batch");
  if (batch.positions.size() != batch.token_ids.size() ||
      batch.seq_index.size() != batch.token_ids.size() ||
      batch.slot_mapping.size() != batch.token_ids.size()) {
    return invalid_argument("batch arrays differ in length");
  }
  for (int t = 0; t < n; ++t) {
    if (batch.slot_mapping[t] < 0 || batch.slot_mapping[t] >= num_blocks_ * block_size_) {
      return invalid_argument("slot {} out of range", batch.slot_mapping[t]);
    }
    if (batch.seq_index[t] < 0 || batch.seq_index[t] >= batch.n_seqs()) {
      return invalid_argument("bad seq_index {}", batch.seq_index[t]);
    }
    if (batch.positions[t] / block_size_ >= batch.max_blocks_per_seq) {
      return invalid_argument("position {} beyond the block table", batch.positions[t]);
    }
    const int32_t* table =
        batch.block_tables.data() + batch.seq_index[t] * batch.max_blocks_per_seq;
    const int expected =
        table[batch.positions[t] / block_size_] * block_size_ + batch.positions[t] % block_size_;
    if (batch.slot_mapping[t] != expected) {
      return invalid_argument("slot {} does not match the block table ({})", batch.slot_mapping[t],
                              expected);
    }
  }
  return ok_status();
}

StatusOr<std::vector<float>> FakeModelRunner::execute(const ForwardBatch& batch) {
  if (fail_next_) {
    fail_next_ = false;
    return internal_error("injected forward failure");
  }
  SW_RETURN_IF_ERROR(validate(batch));
  executed_tokens_ += batch.n_tokens();
  // K/V of the whole batch are written before any token attends, as in LlamaModel::forward.
  for (int t = 0; t < batch.n_tokens(); ++t) slots_[batch.slot_mapping[t]] = batch.token_ids[t];

  std::vector<float> logits;  // [n_rows, vocab]
  for (int32_t row : batch.logit_rows) {
    const int32_t* table =
        batch.block_tables.data() + batch.seq_index[row] * batch.max_blocks_per_seq;
    std::vector<int32_t> prefix;  // what attention at this row reads: positions [0, position]
    for (int p = 0; p <= batch.positions[row]; ++p) {
      const int32_t token = slots_[table[p / block_size_] * block_size_ + p % block_size_];
      if (token < 0) return internal_error("row {} reads a slot never written", row);
      prefix.push_back(token);
    }
    const auto row_logits = fake_logits(prefix, config_.vocab_size);
    logits.insert(logits.end(), row_logits.begin(), row_logits.end());
  }
  return logits;
}

StatusOr<std::vector<int32_t>> FakeModelRunner::execute_and_sample(
    const ForwardBatch& batch, std::span<const RowSampling> rows) {
  if (!samples_on_device_) return unimplemented("the fake samples on the host");
  if (rows.size() != batch.logit_rows.size()) return invalid_argument("rows != logit rows");
  SW_ASSIGN_OR_RETURN(std::vector<float> logits, execute(batch));
  const std::size_t vocab = config_.vocab_size;
  std::vector<int32_t> tokens;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto row = std::span<const float>(logits).subspan(i * vocab, vocab);
    tokens.push_back(
        rows[i].temperature == 0
            ? static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin())
            : static_cast<int32_t>(mix64(rows[i].seed ^ mix64(rows[i].offset)) % vocab));
  }
  device_sampled_rows_ += static_cast<int>(rows.size());
  return tokens;
}

}  // namespace shardwise::testing
