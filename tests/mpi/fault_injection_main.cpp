// Fault injection for a TP=2 group: both ranks run decode steps of the default model; after a
// few steps rank 1 either kills itself (SIGKILL) or hangs (SIGSTOP). The group must end with a
// non-zero status and a log line naming the failure, within the collective timeout: never hang.
// Usage: mpirun -np 2 fault_injection killed|hung
#include <signal.h>

#include <chrono>
#include <cstring>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "common/logging.h"
#include "shard/engine/generator.h"

int main(int argc, char** argv) {
  using namespace shardwise;
  if (argc != 2 || (std::strcmp(argv[1], "killed") != 0 && std::strcmp(argv[1], "hung") != 0)) {
    std::fprintf(stderr, "usage: mpirun -np 2 %s killed|hung\n", argv[0]);
    return 2;
  }
  const bool kill = std::strcmp(argv[1], "killed") == 0;
  auto session = MpiSession::start(&argc, &argv, MpiSession::kWholeWorld);
  if (!session.ok()) return 2;
  MpiCommunicator comm((*session)->tp_group(), std::chrono::seconds(3));
  auto model = load_llama_model(SHARDWISE_DEFAULT_MODEL_DIR, comm);
  if (!model.ok()) return 2;

  GenerationRequest request;
  request.prompt_ids = {1};
  request.max_new_tokens = 2;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int step = 0; std::chrono::steady_clock::now() < deadline; ++step) {
    if (step == 5 && comm.rank() == 1) {
      log()->warn("fault injection: rank 1 {} itself", kill ? "kills" : "stops");
      log()->flush();
      raise(kill ? SIGKILL : SIGSTOP);
    }
    if (!generate(**model, request).ok()) return 2;
  }
  log()->error("fault injection: the group outlived the failure of rank 1");
  return 0;  // the test fails: nothing noticed
}
