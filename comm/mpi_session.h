// MPI start-up for a shard process: initialise MPI, find this rank's place, and split
// MPI_COMM_WORLD into tensor-parallel groups (DESIGN.md: world = replicas x TP).
#pragma once

#include <mpi.h>

#include <memory>

#include "comm/parallel_config.h"
#include "common/status.h"

namespace shardwise {

class MpiSession {
 public:
  static constexpr int kWholeWorld = 0;  // tp_size: all ranks form one group

  // Calls MPI_Init_thread asking for MPI_THREAD_SERIALIZED (the engine thread, not necessarily
  // main, makes all MPI calls); argc and argv may be null. Fails when the world size is not a
  // multiple of tp_size (kWholeWorld: one group of every rank).
  static StatusOr<std::unique_ptr<MpiSession>> start(int* argc, char*** argv, int tp_size);
  ~MpiSession();  // MPI_Finalize
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  const ParallelConfig& config() const { return config_; }
  MPI_Comm tp_group() const { return tp_group_; }  // this replica's ranks, ordered by tp rank

 private:
  MpiSession() = default;
  ParallelConfig config_;
  MPI_Comm tp_group_ = MPI_COMM_NULL;
};

}  // namespace shardwise
