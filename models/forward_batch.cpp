#include "models/forward_batch.h"

namespace shardwise {

Status validate_batch(const LlamaConfig& config, const CacheGeometry& cache,
                      const ForwardBatch& batch) {
  const std::size_t n = batch.token_ids.size();
  if (n == 0) return invalid_argument("empty batch");
  if (batch.positions.size() != n || batch.seq_index.size() != n ||
      batch.slot_mapping.size() != n) {
    return invalid_argument("batch arrays differ in length");
  }
  if (batch.max_blocks_per_seq <= 0 || batch.block_tables.size() % batch.max_blocks_per_seq != 0) {
    return invalid_argument("block_tables is not [n_seqs, max_blocks_per_seq]");
  }
  for (std::size_t t = 0; t < n; ++t) {
    if (batch.token_ids[t] < 0 || batch.token_ids[t] >= config.vocab_size) {
      return invalid_argument("token id {} (at index {}) is outside the vocabulary [0, {})",
                              batch.token_ids[t], t, config.vocab_size);
    }
    const int position = batch.positions[t];
    if (position < 0 || position >= config.max_position_embeddings) {
      return out_of_range("position {} is outside the context window of {} tokens", position,
                          config.max_position_embeddings);
    }
    if (batch.seq_index[t] < 0 || batch.seq_index[t] >= batch.n_seqs()) {
      return invalid_argument("token {} names sequence {} of {}", t, batch.seq_index[t],
                              batch.n_seqs());
    }
    if (batch.slot_mapping[t] < 0 || batch.slot_mapping[t] >= cache.num_slots()) {
      return invalid_argument("cache slot {} is outside the cache of {} slots",
                              batch.slot_mapping[t], cache.num_slots());
    }
    // Every block the token's attention reads must be a real block.
    const int last_block = position / cache.block_size;
    if (last_block >= batch.max_blocks_per_seq) {
      return invalid_argument("position {} needs more than {} blocks", position,
                              batch.max_blocks_per_seq);
    }
    const int32_t* table =
        batch.block_tables.data() + batch.seq_index[t] * batch.max_blocks_per_seq;
    for (int b = 0; b <= last_block; ++b) {
      if (table[b] < 0 || table[b] >= cache.num_blocks) {
        return invalid_argument("block table entry {} is outside the cache of {} blocks", table[b],
                                cache.num_blocks);
      }
    }
  }
  for (int32_t row : batch.logit_rows) {
    if (row < 0 || static_cast<std::size_t>(row) >= n)
      return invalid_argument("logit row {} out of range", row);
  }
  return ok_status();
}

}  // namespace shardwise
