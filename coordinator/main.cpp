// shardwise-coordinator: the front door. Shard leaders register here (gRPC Registry); clients
// call the public gRPC API or the OpenAI-compatible HTTP API. SIGINT/SIGTERM drain in-flight
// requests and exit. Options come from the command line and from a YAML --config file.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "common/logging.h"
#include "coordinator/grpc_services.h"
#include "coordinator/openai_http.h"
#include "coordinator/yaml_config.h"

namespace shardwise {
namespace {

struct CoordinatorOptions {
  std::string grpc_address = "0.0.0.0:50051";
  std::string http_address = "0.0.0.0:8000";
  std::string api_key;
  std::string tls_cert;  // PEM certificate chain; with tls_key, both listeners speak TLS
  std::string tls_key;
  std::vector<std::string> models;  // /health is 503 until each has a live replica
  int heartbeat_ms = 1000;
  int missed_heartbeats = 3;
  size_t max_body_bytes = 4 << 20;
  int http_threads = 64;
  RouterOptions router;
  std::string log_level = "info";
};

std::atomic<bool> g_stop_requested{false};

void request_stop(int) { g_stop_requested = true; }

StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("cannot read {}", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

StatusOr<std::shared_ptr<grpc::ServerCredentials>> grpc_credentials(const CoordinatorOptions& o) {
  if (o.tls_cert.empty()) return grpc::InsecureServerCredentials();
  SW_ASSIGN_OR_RETURN(std::string cert, read_file(o.tls_cert));
  SW_ASSIGN_OR_RETURN(std::string key, read_file(o.tls_key));
  grpc::SslServerCredentialsOptions tls;
  tls.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
  return grpc::SslServerCredentials(tls);
}

int run(const CoordinatorOptions& o) {
  StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = grpc_credentials(o);
  if (!credentials.ok()) {
    log()->error("TLS: {}", credentials.status().to_string());
    return 2;
  }
  Registry registry(std::chrono::milliseconds(o.heartbeat_ms), o.missed_heartbeats, o.router);
  registry.expect_models(o.models);
  Metrics metrics;
  Generation generation(registry, metrics);
  InferenceService inference(generation, registry, o.api_key);
  RegistryService registry_service(registry);

  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(o.grpc_address, *credentials, &grpc_port);
  builder.RegisterService(&inference);
  builder.RegisterService(&registry_service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::max<size_t>(o.max_body_bytes, 64 << 20)));
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || grpc_port == 0) {
    log()->error("cannot listen on {} (gRPC)", o.grpc_address);
    return 2;
  }
  OpenAiHttpServer http(generation, registry, metrics,
                        {o.api_key, o.max_body_bytes, o.http_threads, o.tls_cert, o.tls_key});
  StatusOr<int> http_port = http.bind(o.http_address);
  if (!http_port.ok()) {
    log()->error("{}", http_port.status().to_string());
    return 2;
  }
  log()->info("coordinator: gRPC on port {}, HTTP on port {}{}{}", grpc_port, *http_port,
              o.tls_cert.empty() ? "" : ", TLS", o.api_key.empty() ? "" : ", API key required");
  std::thread http_thread([&] { http.serve(); });

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const auto tick = std::chrono::milliseconds(std::min(o.heartbeat_ms, 100));
  while (!g_stop_requested) {
    std::this_thread::sleep_for(tick);
    registry.expire(std::chrono::steady_clock::now());
  }
  log()->info("shutting down: draining in-flight requests");
  http.stop();  // stops accepting; joins its workers, so streams in flight finish first
  http_thread.join();
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  CLI::App app{
      "shardwise-coordinator: routes gRPC and OpenAI-compatible HTTP requests to the "
      "registered shard leaders.\n"
      "  shardwise-coordinator --grpc 0.0.0.0:50051 --http 0.0.0.0:8000 [--config FILE]"};
  shardwise::CoordinatorOptions o;
  app.config_formatter(std::make_shared<shardwise::YamlConfig>());
  app.set_config("--config", "",
                 "YAML file of options: each key an option's long name (api_key or api-key; "
                 "nested maps join with '-', e.g. tls: {cert: F, key: F}); the command line "
                 "overrides it");
  app.allow_config_extras(CLI::config_extras_mode::error);
  bool print_config = false;
  app.add_flag("--print-config", print_config,
               "Print the effective options as a YAML --config file and exit")
      ->configurable(false);
  app.add_option("--grpc", o.grpc_address, "Public gRPC API and shard registry, HOST:PORT")
      ->capture_default_str();
  app.add_option("--http", o.http_address, "OpenAI-compatible HTTP API, HOST:PORT")
      ->capture_default_str();
  app.add_option("--api-key", o.api_key,
                 "Require 'Authorization: Bearer KEY' (HTTP header or "
                 "gRPC metadata); SHARDWISE_API_KEY also sets it")
      ->envname("SHARDWISE_API_KEY");
  auto* tls_cert =
      app.add_option("--tls-cert", o.tls_cert, "PEM certificate (chain) for TLS on both listeners")
          ->check(CLI::ExistingFile);
  auto* tls_key = app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert")
                      ->check(CLI::ExistingFile);
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_option("--models", o.models,
                 "Models this coordinator serves: /health answers 503 until each has a live "
                 "replica (default: every model that ever registered)");
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "Heartbeat interval asked of shard leaders")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--missed-heartbeats", o.missed_heartbeats,
                 "Missed heartbeats that take a replica out of rotation")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-body-bytes", o.max_body_bytes, "Largest HTTP request body")
      ->capture_default_str();
  app.add_option("--http-threads", o.http_threads, "Concurrent HTTP requests")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-queued", o.router.max_queued,
                 "Requests per model beyond its replicas' capacity before RESOURCE_EXHAUSTED")
      ->capture_default_str();
  app.add_flag("!--no-priority-routing", o.router.route_by_priority,
               "Ignore request priority (interactive->cuda, batch->cpu) when routing");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (print_config) {
    std::cout << app.config_to_str(true, false);
    return 0;
  }
  if (!shardwise::set_log_level(o.log_level)) {
    std::cerr << "unknown --log-level " << o.log_level << "\n";
    return 2;
  }
  return shardwise::run(o);
}
