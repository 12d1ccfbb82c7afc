// Under mpirun -np N: the serving engine on a tensor-parallel group (the leader's runner
// broadcasting StepPlans, the followers executing them) gives the same greedy tokens as the
// engine in one process, with chunked prefill and preemption in play. Exit status 0 on success.
#include <map>
#include <thread>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "common/logging.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/engine/engine.h"
#include "shard/runner/tp_model_runner.h"

namespace shardwise {
namespace {

constexpr int kBlockSize = 4;
// Too few blocks for every request at once (6 requests x up to 9 blocks): forces preemption.
constexpr int kNumBlocks = 24;

using Outputs = std::map<RequestId, std::vector<int32_t>>;

StatusOr<Outputs> run_requests(ModelRunner& runner) {
  EngineOptions options;
  options.scheduler.max_batch_tokens = 7;  // prompts are prefilled in chunks
  Engine engine(runner, options);
  Outputs outputs;
  const std::vector<std::vector<int32_t>> prompts{{1},
                                                  {1, 403, 407, 261, 378},
                                                  {1, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110},
                                                  {1, 403},
                                                  {7, 8, 9},
                                                  {1, 432, 383, 286, 261, 376, 298, 315}};
  for (const auto& prompt : prompts) {
    Request request;
    request.prompt_ids = prompt;
    request.sampling.max_tokens = 24;
    request.sampling.ignore_eos = true;
    request.on_event = [&outputs](const StreamEvent& event) {
      if (event.token) outputs[event.request_id].push_back(*event.token);
    };
    SW_RETURN_IF_ERROR(engine.add_request(std::move(request)).status());
  }
  while (engine.has_unfinished()) SW_RETURN_IF_ERROR(engine.step());
  if (engine.stats().preemptions == 0)
    return internal_error("the cache was meant to force preemption");
  return outputs;
}

int run(const MpiSession& session) {
  MpiCommunicator comm(session.tp_group(), std::chrono::seconds(60));
  auto sliced = load_llama_model(SHARDWISE_DEFAULT_MODEL_DIR, comm);
  if (!sliced.ok()) {
    log()->error("{}", sliced.status().to_string());
    return 1;
  }
  LocalModelRunner slice(**sliced, kNumBlocks, kBlockSize);
  if (comm.rank() != 0) {
    Status status = run_follower_loop(slice, comm);
    if (!status.ok()) log()->error("{}", status.to_string());
    return status.ok() ? 0 : 1;
  }
  StatusOr<Outputs> tp_outputs = [&] {
    LeaderModelRunner runner(slice, comm);
    return run_requests(runner);
  }();
  SoloCommunicator solo;
  auto whole = load_llama_model(SHARDWISE_DEFAULT_MODEL_DIR, solo);
  if (!tp_outputs.ok() || !whole.ok()) {
    log()->error("{} {}", tp_outputs.status().to_string(), whole.status().to_string());
    return 1;
  }
  LocalModelRunner local(**whole, kNumBlocks, kBlockSize);
  auto outputs = run_requests(local);
  if (!outputs.ok()) {
    log()->error("{}", outputs.status().to_string());
    return 1;
  }
  for (const auto& [id, tokens] : *outputs) {
    if (tokens.size() != 24 || tokens != (*tp_outputs)[id]) {
      log()->error("request {}: TP={} tokens differ from one process", id, comm.size());
      return 1;
    }
  }
  log()->info("PASS: {} requests, TP={} tokens equal single-process tokens", outputs->size(),
              comm.size());
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  auto session = shardwise::MpiSession::start(&argc, &argv, shardwise::MpiSession::kWholeWorld);
  if (!session.ok()) return 2;
  shardwise::cpu::set_cpu_threads((*session)->config().cpu_threads_per_rank(
      static_cast<int>(std::thread::hardware_concurrency())));
  return shardwise::run(**session);
}
