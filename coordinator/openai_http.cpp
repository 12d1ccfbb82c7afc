#include "coordinator/openai_http.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>

#include "common/logging.h"
#include "common/net_address.h"
#include "coordinator/auth.h"
#include "coordinator/grpc_services.h"
#include "coordinator/openai_embeddings.h"
#include "coordinator/openai_protocol.h"
#include "coordinator/openai_response.h"
#include "coordinator/readiness.h"
#include "coordinator/tokenize_api.h"

namespace shardwise {
namespace {

using json = nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// A 503 says when to try again (the rest of a restarted coordinator's registration window).
void send_error(httplib::Response& res, const Status& status, std::chrono::seconds retry_after) {
  const int code = http_status(status);
  if (code == 503) res.set_header("Retry-After", std::to_string(retry_after.count()));
  send_json(res, code, error_body(status));
}

std::string sse(const json& data) { return "data: " + data.dump() + "\n\n"; }

// The request body, at most `max_bytes` of it: RESOURCE_EXHAUSTED past that (413; httplib's own
// limit covers only bodies with a Content-Length, and a chunked one grew without bound),
// INVALID_ARGUMENT when it cannot be read (a connection closed or too slow).
StatusOr<std::string> read_body(const httplib::Request& req,
                                const httplib::ContentReader& content_reader, size_t max_bytes) {
  const auto too_large = [max_bytes] {
    return resource_exhausted("the request body is larger than {} bytes", max_bytes);
  };
  if (req.has_header("Content-Length")) {
    const uint64_t length = req.get_header_value<uint64_t>("Content-Length");
    if (length > max_bytes) {
      // A client still sending its body when the connection closes on unread bytes gets a reset,
      // not the 413 (what nginx's lingering close avoids): a body of up to kDrainFactor times the
      // limit is read and dropped first; a larger one is refused unread.
      constexpr uint64_t kDrainFactor = 4;
      if (length <= kDrainFactor * max_bytes)
        content_reader([](const char*, size_t) { return true; });
      return too_large();
    }
  }
  std::string body;
  bool exceeded = false;
  const bool read = content_reader([&](const char* data, size_t length) {
    exceeded = body.size() + length > max_bytes;
    if (!exceeded) body.append(data, length);
    return !exceeded;
  });
  if (exceeded) return too_large();
  if (!read) return invalid_argument("the request body could not be read");
  return body;
}

// POST `path`, its body read by read_body: every POST route has the same limit, chunked bodies
// included (413), so none reads a body without bound.
void post_with_body(httplib::Server& server, const char* path, size_t max_bytes,
                    std::function<void(const std::string& body, httplib::Response& res)> handler) {
  server.Post(path, [max_bytes, handler = std::move(handler)](
                        const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& content_reader) {
    StatusOr<std::string> body = read_body(req, content_reader, max_bytes);
    if (!body.ok()) {
      const int status = body.status().code() == StatusCode::kResourceExhausted ? 413 : 400;
      return send_json(res, status,
                       error_json(status, body.status().message(), std::to_string(status)));
    }
    handler(*body, res);
  });
}

// Streams one request as server-sent events; runs inside httplib's content provider.
void stream_events(Generation& generation, const PreparedRequest& prepared,
                   const OpenAiRequest& request, httplib::DataSink& sink) {
  OpenAiResponse response(request, prepared);
  auto write = [&](const json& data) {
    const std::string event = sse(data);
    return sink.is_writable() && sink.write(event.data(), event.size());
  };
  Status status = generation.run(prepared, [&](const v1::GenerateResponse& message) {
    for (const json& chunk : response.chunks(message)) {
      if (!write(chunk)) return false;
    }
    return true;
  });
  if (status.ok()) {
    if (json usage = response.usage_chunk(); !usage.is_null()) write(usage);
  } else if (status.code() != StatusCode::kCancelled) {
    write(error_body(status));
  }
  const std::string done = "data: [DONE]\n\n";
  sink.write(done.data(), done.size());
  sink.done();
}

}  // namespace

OpenAiHttpServer::OpenAiHttpServer(Generation& generation, Registry& registry, Metrics& metrics,
                                   HttpOptions options)
    : generation_(generation),
      registry_(registry),
      metrics_(metrics),
      options_(std::move(options)),
      server_(make_guarded_http_server(options_.limits, options_.threads, options_.tls_cert_file,
                                       options_.tls_key_file)) {
  server_->set_payload_max_length(options_.max_body_bytes);
  // httplib's default adds SO_REUSEPORT, which lets a second coordinator bind the same port
  // and take half the connections: a port in use must fail the bind instead.
  server_->set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  add_routes();
}

OpenAiHttpServer::~OpenAiHttpServer() = default;

void OpenAiHttpServer::add_routes() {
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.headers.size() > options_.limits.max_headers) {
      send_json(
          res, 431,
          error_json(431, fmt::format("more than {} headers", options_.limits.max_headers), "431"));
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool guarded =
        req.path.starts_with("/v1/") || req.path == "/tokenize" || req.path == "/detokenize";
    if (!guarded || authorized(options_.api_key, req.get_header_value("Authorization"))) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    send_json(res, 401, error_json(401, "missing or wrong API key", "UNAUTHENTICATED"));
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message =
        res.status == 413 ? "the request body is too large" : "HTTP " + std::to_string(res.status);
    send_json(res, res.status, error_json(res.status, message, std::to_string(res.status)));
  });
  auto model_json = [this](const std::string& name) {
    return json{{"id", name},
                {"object", "model"},
                {"created", registry_.created(name)},
                {"owned_by", "shardwise"},
                {"max_model_len", registry_.context_length(name)}};
  };
  server_->Get("/v1/models", [this, model_json](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const std::string& name : registry_.models()) data.push_back(model_json(name));
    send_json(res, 200, {{"object", "list"}, {"data", data}});
  });
  // Model names may hold slashes ("meta-llama/Llama-3.1-8B").
  server_->Get(R"(/v1/models/(.+))", [this, model_json](const httplib::Request& req,
                                                        httplib::Response& res) {
    const std::string name = req.matches[1];
    const std::vector<std::string> models = registry_.models();
    if (std::find(models.begin(), models.end(), name) == models.end()) {
      return send_json(
          res, 404,
          error_json(404, fmt::format("The model '{}' does not exist", name), "model_not_found"));
    }
    send_json(res, 200, model_json(name));
  });
  const size_t max_body = options_.max_body_bytes;
  post_with_body(
      *server_, "/v1/embeddings", max_body,
      [this](const std::string& body, httplib::Response& res) { embeddings(body, res); });
  for (const auto& route :
       {std::pair("/tokenize", &tokenize_body), std::pair("/detokenize", &detokenize_body)}) {
    const auto handler = route.second;  // a structured binding: clang 14 cannot capture it
    post_with_body(*server_, route.first, max_body,
                   [this, handler](const std::string& request_body, httplib::Response& res) {
                     StatusOr<json> body = handler(request_body, registry_);
                     if (!body.ok()) return send_error(res, body.status(), registry_.retry_after());
                     send_json(res, 200, *body);
                   });
  }
  for (const auto& route : {std::pair("/v1/completions", ApiKind::kCompletion),
                            std::pair("/v1/chat/completions", ApiKind::kChat)}) {
    const ApiKind kind = route.second;  // a structured binding: clang 14 cannot capture it
    post_with_body(*server_, route.first, max_body,
                   [this, kind](const std::string& body, httplib::Response& res) {
                     generate(kind, body, res);
                   });
  }
  server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    v1::HealthResponse health;
    fill_health(registry_, health);
    json replicas = json::array();
    for (const auto& r : health.replicas()) {
      replicas.push_back({{"model", r.model()},
                          {"address", r.address()},
                          {"device", r.device()},
                          {"tp", r.tp()},
                          {"live", r.live()},
                          {"outstanding", r.outstanding()}});
    }
    send_json(res, health.serving() ? 200 : 503,
              {{"status", health.serving() ? "ok" : "unavailable"}, {"replicas", replicas}});
  });
  // Probes (docs/operations.md): live while the process answers; ready while every model it
  // knows has a live replica.
  server_->Get("/health/live", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
  });
  server_->Get("/health/ready", [this](const httplib::Request&, httplib::Response& res) {
    const Readiness now = readiness(registry_);
    json models = json::object();
    for (const auto& [model, live] : now.live_replicas) models[model] = {{"live_replicas", live}};
    send_json(res, now.ready ? 200 : 503,
              {{"status", now.ready ? "ok" : "unavailable"}, {"models", models}});
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(registry_), "text/plain; version=0.0.4");
  });
}

StatusOr<int> OpenAiHttpServer::bind(const std::string& address) {
  if (!server_->is_valid()) {
    return failed_precondition("cannot load the TLS certificate {} and key {}",
                               options_.tls_cert_file, options_.tls_key_file);
  }
  SW_ASSIGN_OR_RETURN(HostPort parsed, parse_host_port(address, "--http"));
  int port = parsed.port;
  if (port == 0) {
    port = server_->bind_to_any_port(parsed.host);
  } else if (!server_->bind_to_port(parsed.host, port)) {
    port = -1;
  }
  if (port < 0) return unavailable("cannot listen on {} (HTTP)", why_cannot_listen(address));
  return port;
}

void OpenAiHttpServer::serve() { server_->listen_after_bind(); }

void OpenAiHttpServer::stop() { server_->stop(); }

void OpenAiHttpServer::embeddings(const std::string& body, httplib::Response& res) {
  StatusOr<OpenAiEmbeddingRequest> request = parse_embedding_request(body);
  if (!request.ok()) return send_error(res, request.status(), registry_.retry_after());
  StatusOr<PreparedEmbedding> prepared = generation_.prepare(request->request);
  if (!prepared.ok()) return send_error(res, prepared.status(), registry_.retry_after());
  StatusOr<v1::EmbedResponse> embedded = generation_.embed(*prepared, std::chrono::milliseconds(0));
  if (!embedded.ok()) return send_error(res, embedded.status(), registry_.retry_after());
  StatusOr<json> response = embedding_response(*request, *embedded);
  if (!response.ok()) return send_error(res, response.status(), registry_.retry_after());
  send_json(res, 200, *response);
}

void OpenAiHttpServer::generate(ApiKind kind, const std::string& body, httplib::Response& res) {
  StatusOr<OpenAiRequest> request = parse_openai_request(body, kind);
  if (!request.ok()) return send_error(res, request.status(), registry_.retry_after());
  StatusOr<PreparedRequest> prepared = generation_.prepare(request->request);
  if (!prepared.ok()) return send_error(res, prepared.status(), registry_.retry_after());
  prepared->decode_after_prompt = request->echo;
  if (request->stream) {
    auto state = std::make_shared<std::pair<OpenAiRequest, PreparedRequest>>(
        std::move(request).value(), std::move(prepared).value());
    res.set_chunked_content_provider(
        "text/event-stream", [this, state](size_t, httplib::DataSink& sink) {
          stream_events(generation_, state->second, state->first, sink);
          return true;
        });
    return;
  }
  OpenAiResponse response(*request, *prepared);
  Status status = generation_.run(*prepared, [&](const v1::GenerateResponse& message) {
    response.chunks(message);
    return true;
  });
  if (!status.ok()) return send_error(res, status, registry_.retry_after());
  send_json(res, 200, response.full());
}

}  // namespace shardwise
