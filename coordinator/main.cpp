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
#include <limits>
#include <thread>

#include "common/command_line.h"
#include "common/logging.h"
#include "common/net_address.h"
#include "common/secret.h"
#include "common/version.h"
#include "common/yaml_config.h"
#include "coordinator/decode_errors.h"
#include "coordinator/grpc_health.h"
#include "coordinator/grpc_services.h"
#include "coordinator/openai_http.h"
#include "proto/grpc_process.h"

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
  int64_t http_header_timeout_ms = HttpLimits().header_timeout.count();
  int64_t http_body_timeout_ms = HttpLimits().body_timeout.count();
  RouterOptions router;
  std::string cluster_token_file;  // the secret of Registry.* and Shard.* (docs/security.md)
  std::string registry_address;    // the Registry on its own listener; empty: on --grpc
  double replica_grace_s = 60;
  int registration_window_ms = -1;  // -1: missed_heartbeats heartbeat intervals
  RegistrationLimits limits;
  std::string log_level = "info";
  std::string log_format = "text";
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

RegistryOptions registry_options(const CoordinatorOptions& o) {
  RegistryOptions options;
  options.heartbeat_interval = std::chrono::milliseconds(o.heartbeat_ms);
  options.missed_heartbeats = o.missed_heartbeats;
  options.grace = std::chrono::milliseconds(static_cast<int64_t>(o.replica_grace_s * 1000));
  options.registration_window = o.registration_window_ms >= 0
                                    ? std::chrono::milliseconds(o.registration_window_ms)
                                    : options.heartbeat_interval * o.missed_heartbeats;
  options.limits = o.limits;
  options.router = o.router;
  return options;
}

// The largest gRPC message a listener takes: a request body, or a model card's files.
int max_message_bytes(const CoordinatorOptions& o, bool registry) {
  const RegistrationLimits& l = o.limits;
  const size_t card = l.max_tokenizer_bytes + l.max_tokenizer_config_bytes +
                      l.max_generation_config_bytes + (64 << 10);
  const size_t bytes = std::max(o.max_body_bytes, registry ? card : size_t{0});
  return static_cast<int>(std::min<size_t>(bytes, std::numeric_limits<int>::max()));
}

std::unique_ptr<grpc::Server> start_grpc(const std::string& address,
                                         const std::shared_ptr<grpc::ServerCredentials>& tls,
                                         const std::vector<grpc::Service*>& services,
                                         int max_message_bytes, int* port) {
  grpc::ServerBuilder builder;
  never_share_port(builder);
  builder.AddListeningPort(address, tls, port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(make_decode_error_interceptor_factory());  // undecodable: INVALID_ARGUMENT
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || *port == 0) {
    log()->error("cannot listen on {} (gRPC)", why_cannot_listen(address));
    return nullptr;
  }
  return server;
}

int run(const CoordinatorOptions& o) {
  StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = grpc_credentials(o);
  if (!credentials.ok()) {
    log()->error("TLS: {}", credentials.status().to_string());
    return kExitRuntimeFailure;
  }
  StatusOr<std::string> cluster_token = read_cluster_token(o.cluster_token_file);
  if (!cluster_token.ok()) {
    log()->error("{}", cluster_token.status().to_string());
    return kExitUsage;
  }
  Registry registry(registry_options(o), std::make_shared<const ShardDialer>(*cluster_token));
  registry.expect_models(o.models);
  Metrics metrics;
  Generation generation(registry, metrics);
  InferenceService inference(generation, registry, o.api_key);
  RegistryService registry_service(registry, *cluster_token);

  const bool own_registry = !o.registry_address.empty();
  int grpc_port = 0, registry_port = 0;
  std::vector<grpc::Service*> public_services = {&inference};
  if (!own_registry) public_services.push_back(&registry_service);
  std::unique_ptr<grpc::Server> grpc_server =
      start_grpc(o.grpc_address, *credentials, public_services, max_message_bytes(o, !own_registry),
                 &grpc_port);
  if (!grpc_server) return kExitRuntimeFailure;
  std::unique_ptr<grpc::Server> registry_server;
  if (own_registry) {
    registry_server = start_grpc(o.registry_address, *credentials, {&registry_service},
                                 max_message_bytes(o, true), &registry_port);
    if (!registry_server) return kExitRuntimeFailure;
  }
  HealthPublisher health(grpc_server->GetHealthCheckService());
  health.update(registry);
  HttpLimits http_limits;
  http_limits.header_timeout = std::chrono::milliseconds(o.http_header_timeout_ms);
  http_limits.body_timeout = std::chrono::milliseconds(o.http_body_timeout_ms);
  OpenAiHttpServer http(
      generation, registry, metrics,
      {o.api_key, o.max_body_bytes, o.http_threads, o.tls_cert, o.tls_key, http_limits});
  StatusOr<int> http_port = http.bind(o.http_address);
  if (!http_port.ok()) {
    log()->error("{}", http_port.status().to_string());
    return kExitRuntimeFailure;
  }
  log()->info("coordinator: gRPC on port {}, HTTP on port {}{}{}{}", grpc_port, *http_port,
              own_registry ? fmt::format(", registry on port {}", registry_port) : "",
              o.tls_cert.empty() ? "" : ", TLS", o.api_key.empty() ? "" : ", API key required");
  if (cluster_token->empty()) {
    log()->warn(
        "no --cluster-token-file: the registry accepts shards on this host only, and shards "
        "elsewhere cannot join");
  }
  std::thread http_thread([&] { http.serve(); });

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const auto tick = std::chrono::milliseconds(std::min(o.heartbeat_ms, 100));
  while (!g_stop_requested) {
    std::this_thread::sleep_for(tick);
    registry.expire(std::chrono::steady_clock::now());
    health.update(registry);
  }
  log()->info("shutting down: draining in-flight requests");
  health.shutdown();
  http.stop();  // stops accepting; joins its workers, so streams in flight finish first
  http_thread.join();
  if (registry_server) registry_server->Shutdown(std::chrono::system_clock::now());
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
  bool print_config = false;
  shardwise::add_yaml_config(app, print_config);
  shardwise::add_version_flag(app, "shardwise-coordinator");
  app.add_option("--grpc", o.grpc_address,
                 "Public gRPC API (and the shard Registry, unless --registry), HOST:PORT")
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
  app.add_option("--http-header-timeout-ms", o.http_header_timeout_ms,
                 "Time a connection has to send a request's head (slower ones get 408)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--http-body-timeout-ms", o.http_body_timeout_ms,
                 "Time a request has to send its body once its head arrived")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-queued", o.router.max_queued,
                 "Requests per model beyond its replicas' capacity before RESOURCE_EXHAUSTED")
      ->capture_default_str();
  app.add_flag("!--no-priority-routing", o.router.route_by_priority,
               "Ignore request priority (interactive->cuda, batch->cpu) when routing");
  app.add_option("--cluster-token-file", o.cluster_token_file,
                 "File holding the cluster's secret (16+ characters): shards must present it to "
                 "register, and the coordinator presents it to them. Without it only shards on "
                 "this host may register")
      ->envname("SHARDWISE_CLUSTER_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--registry", o.registry_address,
                 "Serve the shard Registry on its own listener, HOST:PORT, so that --grpc "
                 "exposes only the public API (default: the Registry is on --grpc too)");
  app.add_option("--replica-grace", o.replica_grace_s,
                 "Seconds a replica out of rotation stays listed (/health, /metrics) before it "
                 "and its tokenizer are freed")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--registration-window-ms", o.registration_window_ms,
                 "After start-up, requests for models not registered yet get 503/UNAVAILABLE "
                 "with Retry-After instead of 404 (default: --missed-heartbeats intervals)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-replicas", o.limits.max_replicas, "Replicas the registry holds in all")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-replicas-per-model", o.limits.max_replicas_per_model,
                 "Replicas the registry holds per model")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-models", o.limits.max_models, "Models the registry serves at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-tokenizer-bytes", o.limits.max_tokenizer_bytes,
                 "Largest tokenizer.json a replica may register")
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.add_option("--log-format", o.log_format,
                 "text, or json: one object per line (time, level, rank, replica, message)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  if (auto exit_code = shardwise::parse_command_line(app, argc, argv)) return *exit_code;
  if (print_config) {
    std::cout << app.config_to_str(true, false);
    return shardwise::kExitOk;
  }
  if (!shardwise::set_log_level(o.log_level)) {
    std::cerr << "unknown --log-level " << o.log_level << "\n";
    return shardwise::kExitUsage;
  }
  shardwise::set_log_format(o.log_format);
  shardwise::GrpcProcess grpc_process;  // health, reflection, gRPC's log lines through ours
  grpc_process.end(shardwise::run(o));
}
