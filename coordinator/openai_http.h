// The OpenAI-compatible HTTP front end (cpp-httplib): GET /v1/models and /v1/models/{id},
// POST /v1/completions, POST /v1/chat/completions (stream: true -> server-sent events ending
// "data: [DONE]"), POST /v1/embeddings, vLLM's POST /tokenize and /detokenize, GET /health
// (200 only when every known model has a live replica, with the replicas), GET /health/live and
// /health/ready (probes: docs/operations.md) and GET /metrics.
#pragma once

#include <memory>
#include <string>

#include "coordinator/generation.h"
#include "coordinator/http_connections.h"
#include "coordinator/openai_protocol.h"

namespace httplib {
class Server;
struct Response;
}  // namespace httplib

namespace shardwise {

struct HttpOptions {
  std::string api_key;              // empty: no authentication
  size_t max_body_bytes = 4 << 20;  // larger bodies get 413
  int threads = 64;                 // concurrent requests (each stream holds one)
  std::string tls_cert_file;        // both set: HTTPS
  std::string tls_key_file;
  HttpLimits limits;  // deadlines and sizes of request heads and bodies
};

class OpenAiHttpServer {
 public:
  OpenAiHttpServer(Generation& generation, Registry& registry, Metrics& metrics,
                   HttpOptions options);
  ~OpenAiHttpServer();

  // Binds "HOST:PORT" (port 0 picks a free one); returns the port. FAILED_PRECONDITION when
  // the TLS certificate or key cannot be loaded, UNAVAILABLE saying why when the port cannot
  // be bound (e.g. "address already in use": the port is never shared).
  StatusOr<int> bind(const std::string& address);
  // Serves until stop(); in-flight requests finish first.
  void serve();
  void stop();

 private:
  void add_routes();
  // The POST handlers, given the request's body (read within the limits).
  void embeddings(const std::string& body, httplib::Response& res);
  void generate(ApiKind kind, const std::string& body, httplib::Response& res);

  Generation& generation_;
  Registry& registry_;
  Metrics& metrics_;
  HttpOptions options_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace shardwise
