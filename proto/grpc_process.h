// What every shardwise gRPC server process (the coordinator, shard leaders) sets up the same
// way: gRPC's own log lines go through our logger (so --log-format json holds for them too),
// the standard health service (grpc.health.v1.Health) and server reflection are on, and a
// listener never shares its port.
#pragma once

#include <grpcpp/server_builder.h>

namespace shardwise {

// One per process, in main, before any gRPC object is made: gRPC's log lines through ours,
// health and reflection on. A server process ends through end(), after every gRPC object is
// gone.
class GrpcProcess {
 public:
  GrpcProcess();
  GrpcProcess(const GrpcProcess&) = delete;
  GrpcProcess& operator=(const GrpcProcess&) = delete;

  // Waits for gRPC's shutdown, flushes the logs and exits with `code` without running static
  // destructors, so that no static destructor tears gRPC down while its threads still end
  // channels. Normal exits once crashed ("assertion failed: prior > 0", about 1 in 8 of a
  // coordinator that had dialled shards); the cause was a session let go of after its channel
  // (docs/reliability.md, "Letting go of gRPC channels"), and since its fix 348 normal exits
  // were clean: this is a second guard, not the fix.
  [[noreturn]] void end(int code);
};

// gRPC listens with SO_REUSEPORT unless told not to, which lets a second process bind a port
// in use and take half its connections: with this, that bind fails instead.
void never_share_port(grpc::ServerBuilder& builder);

}  // namespace shardwise
