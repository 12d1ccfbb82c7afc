// Picks this rank's GPU and the device communicator its tensor-parallel group can use:
//   - the group of one                      -> SoloDeviceCommunicator
//   - every rank of the group on its own GPU -> NcclCommunicator
//   - ranks sharing a GPU (NCCL refuses)     -> HostStagedCommunicator (eager only, no graphs)
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>

#include "comm/device_communicator.h"
#include "comm/mpi_session.h"
#include "common/status.h"

namespace shardwise {

// Collective over `group`: every rank of it must call this. Selects CUDA device
// local_rank % device_count on the calling thread, then compares every rank's (host, GPU UUID)
// to choose the communicator (an info log line says which and why). FAILED_PRECONDITION on
// every rank when any rank of the group sees no GPU. `local_size` (ranks on this host) is only
// reported. `timeout` bounds the selection's own exchange and every later collective.
StatusOr<std::unique_ptr<DeviceCommunicator>> make_device_communicator(
    MPI_Comm group, int local_rank, int local_size, std::chrono::milliseconds timeout);

// The same for a shard process's tensor-parallel group.
StatusOr<std::unique_ptr<DeviceCommunicator>> make_device_communicator(
    const MpiSession& session, std::chrono::milliseconds timeout);

}  // namespace shardwise
