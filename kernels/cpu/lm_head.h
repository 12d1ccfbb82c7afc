#pragma once

#include <cstdint>

namespace shardwise::cpu {

// Logits for the selected token rows only (a decode step or the last prompt position needs
// one row per sequence, not one per token): logits[r] = hidden[rows[r]] · weightᵀ.
void lm_head(float* logits,        // [n_rows, vocab]
             const float* hidden,  // [n_tokens, hidden_size]
             const int32_t* rows,  // [n_rows], indices into hidden's tokens
             const float* weight,  // [vocab, hidden_size]
             int n_rows, int vocab, int hidden_size);

}  // namespace shardwise::cpu
