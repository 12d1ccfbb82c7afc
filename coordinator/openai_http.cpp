#include "coordinator/openai_http.h"

#include <httplib.h>

#include <algorithm>

#include "common/logging.h"
#include "coordinator/auth.h"
#include "coordinator/grpc_services.h"
#include "coordinator/openai_embeddings.h"
#include "coordinator/openai_protocol.h"
#include "coordinator/openai_response.h"
#include "coordinator/tokenize_api.h"

namespace shardwise {
namespace {

using json = nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, const Status& status) {
  send_json(res, http_status(status), error_body(status));
}

std::string sse(const json& data) { return "data: " + data.dump() + "\n\n"; }

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
      server_(options_.tls_cert_file.empty()
                  ? std::make_unique<httplib::Server>()
                  : std::make_unique<httplib::SSLServer>(options_.tls_cert_file.c_str(),
                                                         options_.tls_key_file.c_str())) {
  const int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(options_.max_body_bytes);
  add_routes();
}

OpenAiHttpServer::~OpenAiHttpServer() = default;

void OpenAiHttpServer::add_routes() {
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
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
  server_->Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
    StatusOr<OpenAiEmbeddingRequest> request = parse_embedding_request(req.body);
    if (!request.ok()) return send_error(res, request.status());
    StatusOr<PreparedEmbedding> prepared = generation_.prepare(request->request);
    if (!prepared.ok()) return send_error(res, prepared.status());
    StatusOr<v1::EmbedResponse> embedded =
        generation_.embed(*prepared, std::chrono::milliseconds(0));
    if (!embedded.ok()) return send_error(res, embedded.status());
    StatusOr<json> body = embedding_response(*request, *embedded);
    if (!body.ok()) return send_error(res, body.status());
    send_json(res, 200, *body);
  });
  for (auto [path, handler] :
       {std::pair("/tokenize", &tokenize_body), std::pair("/detokenize", &detokenize_body)}) {
    server_->Post(path, [this, handler](const httplib::Request& req, httplib::Response& res) {
      StatusOr<json> body = handler(req.body, registry_);
      if (!body.ok()) return send_error(res, body.status());
      send_json(res, 200, *body);
    });
  }
  for (auto [path, kind] : {std::pair("/v1/completions", ApiKind::kCompletion),
                            std::pair("/v1/chat/completions", ApiKind::kChat)}) {
    server_->Post(path, [this, kind](const httplib::Request& req, httplib::Response& res) {
      StatusOr<OpenAiRequest> request = parse_openai_request(req.body, kind);
      if (!request.ok()) return send_error(res, request.status());
      StatusOr<PreparedRequest> prepared = generation_.prepare(request->request);
      if (!prepared.ok()) return send_error(res, prepared.status());
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
      if (!status.ok()) return send_error(res, status);
      send_json(res, 200, response.full());
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
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(registry_), "text/plain; version=0.0.4");
  });
}

StatusOr<int> OpenAiHttpServer::bind(const std::string& address) {
  if (!server_->is_valid()) {
    return failed_precondition("cannot load the TLS certificate {} and key {}",
                               options_.tls_cert_file, options_.tls_key_file);
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return invalid_argument("--http {}: expected HOST:PORT", address);
  const std::string host = address.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (const std::exception&) {
    return invalid_argument("--http {}: expected HOST:PORT", address);
  }
  if (port == 0) {
    port = server_->bind_to_any_port(host);
    if (port < 0) return unavailable("cannot bind {}", address);
    return port;
  }
  if (!server_->bind_to_port(host, port)) return unavailable("cannot bind {}", address);
  return port;
}

void OpenAiHttpServer::serve() { server_->listen_after_bind(); }

void OpenAiHttpServer::stop() { server_->stop(); }

}  // namespace shardwise
