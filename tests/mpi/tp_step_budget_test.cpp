// Under mpirun -np N with argument R: one rank of a tensor-parallel group (rank R) runs out of
// room for a step. Its runner's reserve() stands in for the GPU runner's step buffers under a
// memory budget: they grow whenever a batch has more tokens than any before, and on rank R
// growing past kBudgetTokens fails with RESOURCE_EXHAUSTED. The group must agree on it: the
// oversized step's request fails with that error on the leader, every rank skips the step, and
// the group goes on serving requests that fit, with the tokens of one process. Exit 0 on success.
#include <cstdlib>
#include <thread>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "common/logging.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/engine/engine.h"
#include "shard/runner/tp_model_runner.h"

namespace shardwise {
namespace {

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 64;
constexpr int kBudgetTokens = 40;

class BudgetedRunner final : public ModelRunner {
 public:
  BudgetedRunner(ModelRunner& local, bool limited) : local_(local), limited_(limited) {}

  const LlamaConfig& config() const override { return local_.config(); }
  int num_kv_blocks() const override { return local_.num_kv_blocks(); }
  int block_size() const override { return local_.block_size(); }
  StatusOr<std::vector<float>> execute(const ForwardBatch& batch) override {
    if (batch.n_tokens() > reserved_tokens_) return internal_error("ran a step never reserved");
    return local_.execute(batch);
  }
  Status validate(const ForwardBatch& batch) const override { return local_.validate(batch); }
  StatusOr<bool> reserve(const ForwardBatch& batch) override {
    if (batch.n_tokens() <= reserved_tokens_) return false;
    if (limited_ && batch.n_tokens() > kBudgetTokens) {
      reserved_tokens_ = 0;
      return resource_exhausted("a step of {} tokens is over this rank's budget of {}",
                                batch.n_tokens(), kBudgetTokens);
    }
    reserved_tokens_ = batch.n_tokens();
    return true;
  }
  void release_reserved() override { reserved_tokens_ = 0; }

 private:
  ModelRunner& local_;
  const bool limited_;
  int reserved_tokens_ = 0;
};

struct Outcome {
  std::vector<int32_t> tokens;
  std::string error;
};

// Runs one request alone through a fresh engine on `runner`.
Outcome run_alone(ModelRunner& runner, std::vector<int32_t> prompt) {
  EngineOptions options;
  options.scheduler.max_batch_tokens = 256;  // the whole prompt in one step
  options.enable_prefix_caching = false;
  Engine engine(runner, options);
  Outcome outcome;
  Request request;
  request.prompt_ids = std::move(prompt);
  request.sampling.max_tokens = 8;
  request.sampling.ignore_eos = true;
  request.on_event = [&outcome](const StreamEvent& event) {
    if (event.token) outcome.tokens.push_back(*event.token);
    if (event.finish_reason == FinishReason::kError) outcome.error = event.error;
  };
  if (auto id = engine.add_request(std::move(request)); !id.ok()) return {{}, "refused"};
  while (engine.has_unfinished()) (void)engine.step();
  return outcome;
}

int run(const MpiSession& session, int limited_rank) {
  MpiCommunicator comm(session.tp_group(), std::chrono::seconds(60));
  auto sliced = load_llama_model(SHARDWISE_DEFAULT_MODEL_DIR, comm);
  if (!sliced.ok()) {
    log()->error("{}", sliced.status().to_string());
    return 1;
  }
  LocalModelRunner slice(**sliced, kNumBlocks, kBlockSize);
  BudgetedRunner budgeted(slice, comm.rank() == limited_rank);
  if (comm.rank() != 0) {
    Status status = run_follower_loop(budgeted, comm);
    if (!status.ok()) log()->error("follower: {}", status.to_string());
    return status.ok() ? 0 : 1;
  }
  const std::vector<int32_t> long_prompt(kBudgetTokens + 9, 403);
  const std::vector<int32_t> short_prompt{1, 403, 407, 261, 378};
  Outcome oversized, fitting;
  {
    LeaderModelRunner leader(budgeted, comm);
    oversized = run_alone(leader, long_prompt);
    fitting = run_alone(leader, short_prompt);
  }
  SoloCommunicator solo;
  auto whole = load_llama_model(SHARDWISE_DEFAULT_MODEL_DIR, solo);
  if (!whole.ok()) return 1;
  LocalModelRunner local(**whole, kNumBlocks, kBlockSize);
  const Outcome expected = run_alone(local, short_prompt);
  if (oversized.error.find("RESOURCE_EXHAUSTED") == std::string::npos ||
      !oversized.tokens.empty()) {
    log()->error("the oversized step did not fail with RESOURCE_EXHAUSTED: '{}', {} tokens",
                 oversized.error, oversized.tokens.size());
    return 1;
  }
  if (!fitting.error.empty() || fitting.tokens != expected.tokens || expected.tokens.size() != 8) {
    log()->error("the request after it did not get one process's tokens: '{}'", fitting.error);
    return 1;
  }
  log()->info("PASS: rank {} of {} over budget: '{}'; the group served on", limited_rank,
              comm.size(), oversized.error);
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  auto session = shardwise::MpiSession::start(&argc, &argv, shardwise::MpiSession::kWholeWorld);
  if (!session.ok() || argc < 2) return 2;
  shardwise::cpu::set_cpu_threads(1);
  return shardwise::run(**session, std::atoi(argv[1]));
}
