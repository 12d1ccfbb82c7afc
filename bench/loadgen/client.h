// A protocol client of the load generator: starts a request and reports its result once.
//   grpc         shardwise.v1.Inference/Generate (inference.proto), one callback reactor per
//                request on a shared channel: no thread waits on a stream
//   completions  POST /v1/completions, SSE streaming (or one JSON body with --no-stream)
//   chat         POST /v1/chat/completions, the same
// HTTP requests run on a pool of threads, one per request in flight, each keeping its
// connection alive; the pool grows to the concurrency it is asked for.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "bench/loadgen/request.h"
#include "common/status.h"

namespace shardwise::loadgen {

enum class Protocol { kGrpc, kCompletions, kChat };
StatusOr<Protocol> parse_protocol(const std::string& name);
const char* protocol_name(Protocol protocol);

struct ClientOptions {
  Protocol protocol = Protocol::kGrpc;
  std::string grpc_address = "127.0.0.1:50051";    // HOST:PORT
  std::string http_url = "http://127.0.0.1:8000";  // http:// or https://
  bool grpc_tls = false;                           // gRPC over TLS (implied by tls_ca_file)
  std::string tls_ca_file;  // PEM roots to trust (e.g. a self-signed certificate)
  std::string api_key;      // sent as "authorization: Bearer KEY"
  std::string model;        // e.g. "stories260K"
  bool stream = true;       // HTTP: SSE; without it TTFT is the whole request
  double temperature = 0;   // 0: greedy
  double request_timeout_s = 600;
};

using DoneFn = std::function<void(RequestResult&&)>;

class Client {
 public:
  virtual ~Client() = default;
  // Sends `spec` now. `done` runs exactly once, on one of the client's threads, when the
  // request finished or failed; it may call start() again. Never blocks for long.
  virtual void start(const RequestSpec& spec, DoneFn done) = 0;
};

// `zero` is the run's clock zero, against which results are timed.
StatusOr<std::unique_ptr<Client>> make_client(const ClientOptions& options, Clock::time_point zero);
StatusOr<std::unique_ptr<Client>> make_grpc_client(const ClientOptions& options,
                                                   Clock::time_point zero);
StatusOr<std::unique_ptr<Client>> make_http_client(const ClientOptions& options,
                                                   Clock::time_point zero);

// GET `url` (http:// or https://, trusting `tls_ca_file` when given): the body of a 200.
StatusOr<std::string> http_get(const std::string& url, const std::string& tls_ca_file,
                               const std::string& api_key);

// Reads a whole file (certificates), NOT_FOUND naming it when it cannot be read.
StatusOr<std::string> read_text_file(const std::string& path);

}  // namespace shardwise::loadgen
