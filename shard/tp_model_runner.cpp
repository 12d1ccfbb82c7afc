#include "shard/tp_model_runner.h"

#include "common/check.h"
#include "common/logging.h"

namespace shardwise {

LeaderModelRunner::LeaderModelRunner(ModelRunner& local, Communicator& comm)
    : local_(local), comm_(comm) {
  SW_CHECK(comm_.rank() == 0);
}

LeaderModelRunner::~LeaderModelRunner() {
  StepPlan shutdown;
  shutdown.kind = StepKind::kShutdown;
  send(shutdown);
}

void LeaderModelRunner::send(const StepPlan& plan) {
  StepPlan::Header header;
  std::vector<int32_t> payload;
  plan.encode(&header, &payload);
  comm_.broadcast(header.data(), sizeof(header), 0);
  if (!payload.empty()) comm_.broadcast(payload.data(), payload.size() * sizeof(int32_t), 0);
}

Status LeaderModelRunner::send_batch(const ForwardBatch& batch) {
  // Followers run whatever they are sent, so the batch must be valid before it leaves.
  SW_RETURN_IF_ERROR(local_.validate(batch));
  StepPlan plan;
  plan.batch = batch;
  send(plan);
  return ok_status();
}

StatusOr<std::vector<float>> LeaderModelRunner::execute(const ForwardBatch& batch) {
  SW_RETURN_IF_ERROR(send_batch(batch));
  return local_.execute(batch);
}

StatusOr<std::vector<int32_t>> LeaderModelRunner::execute_and_sample(
    const ForwardBatch& batch, std::span<const RowSampling> rows) {
  SW_RETURN_IF_ERROR(send_batch(batch));
  return local_.execute_and_sample(batch, rows);
}

Status run_follower_loop(ModelRunner& local, Communicator& comm) {
  std::vector<int32_t> payload;
  for (long steps = 0;; ++steps) {
    StepPlan::Header header;
    comm.broadcast(header.data(), sizeof(header), 0, Communicator::Wait::kIdle);
    std::size_t payload_ints = 0;
    SW_RETURN_IF_ERROR(StepPlan::decode_header(header, &payload_ints));
    payload.resize(payload_ints);
    if (payload_ints > 0) comm.broadcast(payload.data(), payload_ints * sizeof(int32_t), 0);
    SW_ASSIGN_OR_RETURN(StepPlan plan, StepPlan::decode(header, payload));
    if (plan.kind == StepKind::kShutdown) {
      log()->debug("follower: shutdown after {} steps", steps);
      return ok_status();
    }
    SW_RETURN_IF_ERROR(local.execute_discarding_logits(plan.batch));
  }
}

}  // namespace shardwise
