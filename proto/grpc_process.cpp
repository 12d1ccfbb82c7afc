#include "proto/grpc_process.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdio>
#include <cstdlib>

#include "common/logging.h"

namespace shardwise {
namespace {

void log_grpc_line(gpr_log_func_args* args) {
  const spdlog::level::level_enum level =
      args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
      : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  log()->log(level, "grpc: {} ({}:{})", args->message, args->file, args->line);
}

}  // namespace

GrpcProcess::GrpcProcess() {
  gpr_set_log_function(log_grpc_line);
  grpc_init();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
}

void GrpcProcess::end(int code) {
  grpc_shutdown_blocking();
  log()->flush();
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

void never_share_port(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

}  // namespace shardwise
