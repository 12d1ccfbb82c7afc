// The StepPlan: what the leader of a tensor-parallel group sends its followers every engine
// step (DESIGN.md). Followers hold no request state; the plan is all they need to run the same
// forward pass: the ForwardBatch (token ids, positions, slots, block tables, logit rows).
//
// Wire format (version 1), all int32 little-endian:
//   header  [magic, version, kind, n_tokens, n_seqs, max_blocks_per_seq, n_logit_rows,
//   payload_ints] payload token_ids[n_tokens] positions[n_tokens] seq_index[n_tokens]
//   slot_mapping[n_tokens]
//           block_tables[n_seqs * max_blocks_per_seq] logit_rows[n_logit_rows]
// The header goes in one broadcast (fixed size), the payload in a second.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "models/forward_batch.h"

namespace shardwise {

enum class StepKind : int32_t {
  kForward = 1,   // run the batch
  kShutdown = 2,  // leave the follower loop
};

struct StepPlan {
  static constexpr int32_t kMagic = 0x53575350;  // "SWSP"
  static constexpr int32_t kVersion = 1;
  static constexpr int kHeaderInts = 8;
  using Header = std::array<int32_t, kHeaderInts>;

  StepKind kind = StepKind::kForward;
  ForwardBatch batch;

  // Serialises into a header and a payload.
  void encode(Header* header, std::vector<int32_t>* payload) const;
  // Checks magic, version and sizes; the payload must hold header[7] ints.
  static Status decode_header(const Header& header, std::size_t* payload_ints);
  static StatusOr<StepPlan> decode(const Header& header, const std::vector<int32_t>& payload);
};

}  // namespace shardwise
