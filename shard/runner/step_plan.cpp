#include "shard/runner/step_plan.h"

namespace shardwise {
namespace {

void put(std::vector<int32_t>* payload, const std::vector<int32_t>& values) {
  payload->insert(payload->end(), values.begin(), values.end());
}

}  // namespace

void StepPlan::encode(Header* header, std::vector<int32_t>* payload) const {
  payload->clear();
  put(payload, batch.token_ids);
  put(payload, batch.positions);
  put(payload, batch.seq_index);
  put(payload, batch.slot_mapping);
  put(payload, batch.block_tables);
  put(payload, batch.logit_rows);
  *header = {kMagic,
             kVersion,
             static_cast<int32_t>(kind),
             batch.n_tokens(),
             batch.n_seqs(),
             batch.max_blocks_per_seq,
             static_cast<int32_t>(batch.logit_rows.size()),
             static_cast<int32_t>(payload->size())};
}

Status StepPlan::decode_header(const Header& header, std::size_t* payload_ints) {
  if (header[0] != kMagic) return data_loss("step plan has bad magic {:#x}", header[0]);
  if (header[1] != kVersion) {
    return failed_precondition(
        "step plan version {} from the leader, this follower speaks {}: "
        "all ranks must run the same shardwise build",
        header[1], kVersion);
  }
  for (int i = 3; i < kHeaderInts; ++i) {
    if (header[i] < 0) return data_loss("step plan header field {} is negative", i);
  }
  const int64_t expected =
      4LL * header[3] + static_cast<int64_t>(header[4]) * header[5] + header[6];
  if (expected != header[7]) return data_loss("step plan sizes disagree with its payload length");
  *payload_ints = static_cast<std::size_t>(header[7]);
  return ok_status();
}

StatusOr<StepPlan> StepPlan::decode(const Header& header, const std::vector<int32_t>& payload) {
  std::size_t payload_ints = 0;
  SW_RETURN_IF_ERROR(decode_header(header, &payload_ints));
  if (payload.size() != payload_ints) return data_loss("step plan payload has the wrong length");
  StepPlan plan;
  if (header[2] != static_cast<int32_t>(StepKind::kForward) &&
      header[2] != static_cast<int32_t>(StepKind::kShutdown)) {
    return data_loss("unknown step kind {}", header[2]);
  }
  plan.kind = static_cast<StepKind>(header[2]);
  auto next = payload.begin();
  auto take = [&next](std::vector<int32_t>& out, int32_t count) {
    out.assign(next, next + count);
    next += count;
  };
  ForwardBatch& batch = plan.batch;
  take(batch.token_ids, header[3]);
  take(batch.positions, header[3]);
  take(batch.seq_index, header[3]);
  take(batch.slot_mapping, header[3]);
  take(batch.block_tables, header[4] * header[5]);
  batch.max_blocks_per_seq = header[5];
  take(batch.logit_rows, header[6]);
  return plan;
}

}  // namespace shardwise
