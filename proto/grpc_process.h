// What every shardwise gRPC server process (the coordinator, shard leaders) sets up the same
// way: gRPC's own log lines go through our logger (so --log-format json holds for them too),
// the standard health service (grpc.health.v1.Health) and server reflection are on, and a
// listener never shares its port.
#pragma once

#include <grpcpp/server_builder.h>

namespace shardwise {

// Once, before any server is built.
void init_grpc_process();

// gRPC listens with SO_REUSEPORT unless told not to, which lets a second process bind a port
// in use and take half its connections: with this, that bind fails instead.
void never_share_port(grpc::ServerBuilder& builder);

}  // namespace shardwise
