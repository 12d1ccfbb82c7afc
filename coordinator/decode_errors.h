// gRPC answers a request message it cannot decode with INTERNAL (synchronous methods) or
// UNIMPLEMENTED (callback methods such as Inference.Generate, whose generated handler gives up on
// a failed parse as if the method did not exist). Both blame the server for the client's bytes.
// This server interceptor sees the failed parse and answers INVALID_ARGUMENT naming the method.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

namespace shardwise {

// For ServerBuilder::experimental().SetInterceptorCreators(); it intercepts the methods that
// take one request message (unary and server-streaming), every other call passes untouched.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
make_decode_error_interceptor_factory();

}  // namespace shardwise
