#include "shard/runner/tp_model_runner.h"

#include "comm/agreement.h"
#include "common/check.h"
#include "common/logging.h"

namespace shardwise {
namespace {

// Every rank reserves the step's buffers; when they had to grow, the group agrees on the
// outcome, so that a step one rank cannot hold fails on every rank before any collective of it.
// Ranks grow at the same steps (growth depends only on the batches, which are the same), so
// they all take part in the agreement or none does.
Status reserve_on_every_rank(ModelRunner& local, Communicator& comm, const ForwardBatch& batch) {
  StatusOr<bool> grew = local.reserve(batch);
  if (grew.ok() && !*grew) return ok_status();
  if (!grew.ok()) {
    log()->warn("rank {} cannot hold a step of {} tokens: {}", comm.rank(), batch.n_tokens(),
                grew.status().to_string());
  }
  if (!any_rank_failed(comm, !grew.ok())) return ok_status();
  local.release_reserved();
  if (!grew.ok()) return grew.status();
  return resource_exhausted("another rank of the group cannot hold a step of {} tokens",
                            batch.n_tokens());
}

}  // namespace

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
  SW_RETURN_IF_ERROR(reserve_on_every_rank(local_, comm_, batch));
  return local_.execute(batch);
}

StatusOr<std::vector<int32_t>> LeaderModelRunner::execute_and_sample(
    const ForwardBatch& batch, std::span<const RowSampling> rows) {
  SW_RETURN_IF_ERROR(send_batch(batch));
  SW_RETURN_IF_ERROR(reserve_on_every_rank(local_, comm_, batch));
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
    // A step some rank cannot hold is skipped by all of them; the leader fails its requests.
    if (!reserve_on_every_rank(local, comm, plan.batch).ok()) continue;
    SW_RETURN_IF_ERROR(local.execute_discarding_logits(plan.batch));
  }
}

}  // namespace shardwise
