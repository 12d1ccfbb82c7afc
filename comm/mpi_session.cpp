#include "comm/mpi_session.h"

#include <memory>

#include "common/check.h"
#include "common/logging.h"

namespace shardwise {

StatusOr<std::unique_ptr<MpiSession>> MpiSession::start(int* argc, char*** argv, int tp_size) {
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
  std::unique_ptr<MpiSession> session(new MpiSession());
  if (provided < MPI_THREAD_SERIALIZED) {
    return failed_precondition("the MPI library does not provide MPI_THREAD_SERIALIZED");
  }
  ParallelConfig& config = session->config_;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &config.world_rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &config.world_size));
  if (tp_size == kWholeWorld) tp_size = config.world_size;
  if (tp_size < 1 || config.world_size % tp_size != 0) {
    return invalid_argument(
        "{} MPI ranks cannot form groups of --tp {}: launch a multiple of {} "
        "ranks (replicas x TP)",
        config.world_size, tp_size, tp_size);
  }
  config.tp_size = tp_size;
  set_check_context_rank(config.world_rank);
  set_log_rank(config.world_rank, config.replica());

  MPI_Comm host_comm;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, config.world_rank,
                                MPI_INFO_NULL, &host_comm));
  MPI_CHECK(MPI_Comm_rank(host_comm, &config.local_rank));
  MPI_CHECK(MPI_Comm_size(host_comm, &config.local_size));
  MPI_CHECK(MPI_Comm_free(&host_comm));
  MPI_CHECK(
      MPI_Comm_split(MPI_COMM_WORLD, config.replica(), config.world_rank, &session->tp_group_));
  return session;
}

MpiSession::~MpiSession() {
  if (tp_group_ != MPI_COMM_NULL) MPI_Comm_free(&tp_group_);
  MPI_Finalize();
}

}  // namespace shardwise
