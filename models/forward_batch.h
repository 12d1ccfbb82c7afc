// One forward pass's input: tokens of one or more sequences (prefill chunks and decode steps
// mixed), where each token's K/V goes in the paged cache, and which tokens need logits.
// The scheduler builds it; on a TP group the leader broadcasts it (as part of a StepPlan).
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "models/model_config.h"

namespace shardwise {

struct ForwardBatch {
  std::vector<int32_t> token_ids;  // [n_tokens]
  std::vector<int32_t> positions;  // [n_tokens] position of the token in its sequence
  std::vector<int32_t> seq_index;  // [n_tokens] the token's sequence: a row of block_tables
  std::vector<int32_t>
      slot_mapping;  // [n_tokens] cache slot for its K/V: block * block_size + offset
  std::vector<int32_t> block_tables;  // [n_seqs, max_blocks_per_seq] cache blocks of each sequence
  int max_blocks_per_seq = 0;
  std::vector<int32_t> logit_rows;  // [n_rows] tokens whose next-token logits are wanted

  int n_tokens() const { return static_cast<int>(token_ids.size()); }
  int n_seqs() const {
    return max_blocks_per_seq == 0 ? 0 : static_cast<int>(block_tables.size()) / max_blocks_per_seq;
  }
};

// The shape of a paged KV cache that a batch's slots and block tables index.
struct CacheGeometry {
  int num_blocks = 0;  // e.g. 1024
  int block_size = 0;  // tokens per block, e.g. 16
  int num_slots() const { return num_blocks * block_size; }
};

// The checks every model makes before it runs a batch: arrays of one length, token ids in the
// vocabulary, positions in the context window, sequences, slots and block-table entries inside
// the cache, logit rows naming tokens of the batch. INVALID_ARGUMENT (OUT_OF_RANGE for a
// position past the window) naming the first offending entry.
Status validate_batch(const LlamaConfig& config, const CacheGeometry& cache,
                      const ForwardBatch& batch);

}  // namespace shardwise
