// shardwise-shard: one rank of a tensor-parallel model replica, launched by mpirun or srun.
// World = replicas x TP ranks; rank 0 of each group leads (schedules, samples, broadcasts a
// StepPlan every step) and the others follow. Two modes: one-shot (--ids), where rank 0 prints
// the same JSON as `shardwise generate`; and serve (--coordinator, --listen), where each leader
// serves the Shard gRPC API and registers its replica with the coordinator until SIGTERM.
// Options come from the command line and from a YAML --config file (as the coordinator's).
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "comm/agreement.h"
#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "common/command_line.h"
#include "common/logging.h"
#include "common/net_address.h"
#include "common/secret.h"
#include "common/version.h"
#include "common/yaml_config.h"
#include "kernels/cpu/cpu_threads.h"
#include "proto/grpc_process.h"
#include "shard/cli/cli_support.h"
#include "shard/cli/device_flags.h"
#include "shard/cli/generation_output.h"
#include "shard/engine/generator.h"
#include "shard/runner/replica.h"
#include "shard/serve/leader_service.h"

namespace shardwise {
namespace {

struct ShardOptions {
  std::string model_dir = cli::default_model_dir();
  int tp = 1;
  DeviceOptions device;  // --device, and with cuda --dtype, --random-weights, ...
  std::vector<int32_t> ids;
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool ignore_eos = false;
  int block_size = 16;
  int num_kv_blocks = 0;  // 0: enough for one full context window
  double collective_timeout_s = 60;
  int threads = 0;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string coordinator;         // serve mode: the coordinator's Registry, e.g. "127.0.0.1:50051"
  std::string coordinator_ca;      // PEM roots that sign the coordinator's TLS certificate
  std::string listen;              // serve mode: replica r's leader listens on this port + r
  std::string advertise;           // serve mode: HOST[:PORT] registered instead of --listen's
  std::string model_name;          // serve mode: the name clients use (default: the folder's name)
  int capacity = 8;                // serve mode: concurrent sequences
  std::string cluster_token_file;  // serve mode: the cluster's secret (docs/security.md)
  double drain_timeout_s = 30;     // serve mode: how long SIGTERM waits for running requests
};

// --listen and --advertise are checked as they are parsed, so a malformed one is a usage error.
CLI::Validator address_syntax(bool port_required) {
  return CLI::Validator(
      [port_required](std::string& value) -> std::string {
        StatusOr<HostPort> parsed =
            port_required ? parse_host_port(value, "") : parse_host_optional_port(value, "");
        if (parsed.ok()) return "";
        const std::string& message = parsed.status().message();  // " VALUE: why" (no flag)
        return message.substr(message.find_first_not_of(' '));
      },
      port_required ? "HOST:PORT" : "HOST[:PORT]");
}

void add_options(CLI::App& app, ShardOptions& o) {
  app.add_option("--model", o.model_dir, "Hugging Face model folder")
      ->capture_default_str()
      ->check(cli::existing_model_dir());
  app.add_option("--tp", o.tp,
                 "Tensor-parallel degree: ranks per replica (world size must be a "
                 "multiple)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli::add_device_flags(&app, o.device);
  app.add_option("--ids", o.ids, "One-shot mode: prompt token ids, comma-separated")
      ->delimiter(',');
  app.add_option("--coordinator", o.coordinator, "Serve mode: the coordinator, HOST:PORT");
  app.add_option("--coordinator-ca", o.coordinator_ca,
                 "Serve mode: reach a TLS coordinator, trusting this PEM CA (or self-signed) "
                 "certificate")
      ->check(CLI::ExistingFile);
  app.add_option("--listen", o.listen,
                 "Serve mode: HOST:PORT of the leader's gRPC service (replica r adds r to PORT)")
      ->check(address_syntax(true));
  app.add_option("--advertise", o.advertise,
                 "Serve mode: HOST[:PORT] the coordinator is told to reach the leader at "
                 "(replica r adds r to PORT; default: --listen's, where a wildcard host such as "
                 "0.0.0.0 becomes this host's address toward the coordinator)")
      ->check(address_syntax(false));
  app.add_option("--model-name", o.model_name, "Serve mode: model name (default: folder name)");
  app.add_option("--capacity", o.capacity,
                 "Serve mode: concurrent sequences (sizes the KV cache "
                 "when --num-kv-blocks is 0)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--cluster-token-file", o.cluster_token_file,
                 "Serve mode: file holding the cluster's secret, presented to the coordinator "
                 "and required of callers of this leader (without it, only callers on this "
                 "host are served)")
      ->envname("SHARDWISE_CLUSTER_TOKEN_FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "Serve mode: seconds SIGTERM waits for running requests to finish before "
                 "cancelling them and stopping the group")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-new-tokens", o.max_new_tokens, "Tokens to generate")->capture_default_str();
  app.add_option("--temperature", o.sampling.temperature, "0 is greedy")->capture_default_str();
  app.add_option("--top-k", o.sampling.top_k, "0: off")->capture_default_str();
  app.add_option("--top-p", o.sampling.top_p, "1: off")->capture_default_str();
  app.add_option("--seed", o.sampling.seed, "Sampling seed")->capture_default_str();
  app.add_flag("--ignore-eos", o.ignore_eos, "Generate past end-of-sequence tokens");
  app.add_option("--block-size", o.block_size, "KV cache block size in tokens")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--num-kv-blocks", o.num_kv_blocks,
                 "KV cache blocks per rank (0: one full context window; with --device cuda "
                 "the --kv-cache-gb budget)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--collective-timeout", o.collective_timeout_s,
                 "Seconds a collective may take before the group is aborted")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads,
                 "CPU threads per rank (0: this host's cores shared among its ranks)")
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.add_option("--log-format", o.log_format,
                 "text, or json: one object per line (time, level, rank, replica, message)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
}

int run_one_shot(const ShardOptions& o, const ParallelConfig& config, ModelRunner& runner) {
  // Every leader loads the tokenizer the same way, but only world rank 0 prints.
  auto tokenizer = cli::load_tokenizer_if_present(o.model_dir);
  GenerationRequest request;
  request.prompt_ids = o.ids;
  request.max_new_tokens = o.max_new_tokens;
  request.sampling = o.sampling;
  if (!o.ignore_eos) {
    request.stop_token_ids =
        cli::default_stop_token_ids(runner.config(), tokenizer.ok() ? tokenizer->get() : nullptr);
  }
  StatusOr<GenerationResult> result = generate(runner, request);
  if (!tokenizer.ok() || !result.ok()) {
    log()->error("{}", (tokenizer.ok() ? result.status() : tokenizer.status()).to_string());
    return kExitRuntimeFailure;
  }
  auto output = cli::generation_json(result->token_ids, tokenizer->get());
  if (!output.ok()) {
    log()->error("{}", output.status().to_string());
    return kExitRuntimeFailure;
  }
  if (config.world_rank == 0) std::cout << output->dump() << std::endl;
  return 0;
}

std::atomic<bool> g_stop_requested{false};

void request_stop(int) { g_stop_requested = true; }

// A follower signalled to stop keeps executing plans until the leader, drained, sends kShutdown;
// but a leader that died sends nothing, so the follower gives up `patience_s` seconds after the
// signal (0: never waits for one).
class FollowerWatchdog {
 public:
  explicit FollowerWatchdog(double patience_s)
      : thread_([this, patience_s] {
          if (patience_s <= 0) return;
          while (!done_ && !g_stop_requested) std::this_thread::sleep_for(kTick);
          const auto deadline = std::chrono::steady_clock::now() +
                                std::chrono::milliseconds(static_cast<int64_t>(patience_s * 1000));
          while (!done_ && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(kTick);
          }
          if (done_) return;
          log()->critical("follower: no shutdown from the leader {} s after SIGTERM; exiting",
                          patience_s);
          log()->flush();
          std::_Exit(3);
        }) {}
  ~FollowerWatchdog() {
    done_ = true;
    thread_.join();
  }

 private:
  static constexpr std::chrono::milliseconds kTick{100};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Replica r's leader listens on --listen's port + r: "127.0.0.1:50061", replica 2 ->
// 127.0.0.1:50063.
StatusOr<HostPort> listen_address(const ShardOptions& o, int replica) {
  SW_ASSIGN_OR_RETURN(HostPort listen, parse_host_port(o.listen, "--listen"));
  if (listen.port == 0 || listen.port + replica > 65535) {
    return invalid_argument("--listen {}: replica {} needs port {}, from 1 to 65535", o.listen,
                            replica, listen.port + replica);
  }
  listen.port += replica;
  return listen;
}

// What the coordinator is told to dial: --advertise (its port, or else the listen port, plus the
// replica's offset), else the listen address, whose wildcard host (0.0.0.0) no other host could
// reach: it becomes this host's address on the interface that routes to the coordinator.
StatusOr<std::string> advertised_address(const ShardOptions& o, const HostPort& listen,
                                         int replica) {
  if (!o.advertise.empty()) {
    SW_ASSIGN_OR_RETURN(HostPort advertise, parse_host_optional_port(o.advertise, "--advertise"));
    advertise.port = advertise.port > 0 ? advertise.port + replica : listen.port;
    return advertise.to_string();
  }
  if (!is_wildcard_host(listen.host)) return listen.to_string();
  StatusOr<HostPort> coordinator = parse_host_port(o.coordinator, "--coordinator");
  StatusOr<std::string> local = coordinator.ok() ? local_address_toward(*coordinator)
                                                 : StatusOr<std::string>(coordinator.status());
  if (!local.ok()) {
    return failed_precondition(
        "--listen {} names no address the coordinator can dial, and {}: "
        "give --advertise HOST",
        o.listen, local.status().message());
  }
  return HostPort{*local, listen.port}.to_string();
}

struct ServeAddresses {
  std::string listen;     // where this leader listens, e.g. "0.0.0.0:50061"
  std::string advertise;  // what the coordinator is told, e.g. "10.0.0.7:50061"
};

// Checked before the model loads (minutes, for a large one): the listen port must be free and
// the address to advertise known.
StatusOr<ServeAddresses> serve_addresses(const ShardOptions& o, int replica) {
  SW_ASSIGN_OR_RETURN(HostPort listen, listen_address(o, replica));
  if (Status free = probe_listen(listen); !free.ok()) {
    return unavailable("cannot listen on {}", free.message());
  }
  SW_ASSIGN_OR_RETURN(std::string advertise, advertised_address(o, listen, replica));
  return ServeAddresses{listen.to_string(), advertise};
}

// TLS when the coordinator's certificate authority is given, else a plain channel.
std::shared_ptr<grpc::ChannelCredentials> coordinator_credentials(const std::string& ca_file) {
  if (ca_file.empty()) return grpc::InsecureChannelCredentials();
  std::ifstream in(ca_file);
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return grpc::SslCredentials(tls);
}

// Serves the Shard API from this leader until SIGINT/SIGTERM, registered with the coordinator.
int serve(const ShardOptions& o, const ParallelConfig& config, ModelRunner& runner,
          const ServeAddresses& addresses) {
  StatusOr<v1::ModelCard> card = read_model_card(o.model_dir);
  if (!card.ok()) {
    log()->error("{}", card.status().to_string());
    return kExitRuntimeFailure;
  }
  const std::string& listen = addresses.listen;
  card->set_name(o.model_name.empty() ? std::filesystem::path(o.model_dir).filename().string()
                                      : o.model_name);
  card->set_address(addresses.advertise);
  card->set_context_length(runner.config().max_position_embeddings);
  card->set_device(o.device.device == Device::kCuda ? v1::DEVICE_CUDA : v1::DEVICE_CPU);
  card->set_tp(config.tp_size);
  card->set_capacity(o.capacity);
  card->set_vocab_size(runner.config().vocab_size);
  card->set_instance_secret(random_hex(32));
  StatusOr<std::string> cluster_token = read_cluster_token(o.cluster_token_file);
  if (!cluster_token.ok()) {
    log()->error("{}", cluster_token.status().to_string());
    return kExitUsage;
  }

  EngineOptions engine_options;
  engine_options.scheduler.max_num_seqs = o.capacity;
  EngineLoop loop(runner, engine_options);
  ShardService service(loop, *cluster_token, card->instance_secret());
  grpc::ServerBuilder builder;
  int port = 0;
  never_share_port(builder);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    log()->error("cannot listen on {}", why_cannot_listen(listen));
    return kExitRuntimeFailure;
  }
  // grpc.health.v1.Health: "" is SERVING while the server runs, the model's name until drain.
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(card->name(), true);
  log()->info("serving {} on {}, advertised as {}", card->name(), listen, addresses.advertise);
  {
    Registrar registrar(o.coordinator, coordinator_credentials(o.coordinator_ca), *cluster_token,
                        *card, loop);
    while (!g_stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log()->info("shutting down: deregistering, then draining requests (up to {} s)",
                o.drain_timeout_s);
  }
  if (health != nullptr) health->Shutdown();
  // Streams end once their requests finish; at the deadline gRPC cancels what is left.
  service.drain();
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(o.drain_timeout_s * 1000)));
  loop.stop();
  log()->info("drained: stopping the group");
  return 0;
}

int run(const ShardOptions& o, const MpiSession& session) {
  const ParallelConfig& config = session.config();
  if (Status status = check_device_options(o.device); !status.ok()) {
    log()->error("{}", status.to_string());
    return kExitUsage;
  }
  if (o.ids.empty()) {
    // The launcher signals every rank; the leader alone decides when the group stops (it sends
    // kShutdown once drained), so a follower outlives the signal (FollowerWatchdog). A leader
    // signalled while loading stops as soon as it has loaded.
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
  }
  const std::chrono::milliseconds timeout(static_cast<long>(o.collective_timeout_s * 1000));
  MpiCommunicator comm(session.tp_group(), timeout);
  const bool serving = o.ids.empty();
  StatusOr<ServeAddresses> addresses = ServeAddresses{};
  if (serving && config.is_leader()) addresses = serve_addresses(o, config.replica());
  if (!addresses.ok()) log()->error("{}", addresses.status().to_string());
  // The group gives up together, before anyone loads the model.
  if (serving && any_rank_failed(comm, !addresses.ok())) return kExitRuntimeFailure;
  log()->info("replica {} of {}, tp rank {} of {}, loading {} ({})", config.replica(),
              config.num_replicas(), config.tp().rank, config.tp_size, o.model_dir,
              device_name(o.device.device));
  ReplicaOptions replica_options;
  replica_options.model_dir = o.model_dir;
  replica_options.device = o.device;
  replica_options.block_size = o.block_size;
  // 0: on the GPU the memory budget (--kv-cache-gb); on the CPU one full context window per
  // sequence the mode runs at once.
  replica_options.num_kv_blocks = o.num_kv_blocks;
  replica_options.sequences = o.ids.empty() ? o.capacity : 1;
  // Collective: fails on every rank when one rank fails.
  auto replica = make_replica(replica_options, {&session, &comm, timeout});
  if (!replica.ok()) {
    log()->error("{}", replica.status().to_string());
    return kExitRuntimeFailure;
  }
  if (!config.is_leader()) {
    FollowerWatchdog watchdog(o.ids.empty() ? o.drain_timeout_s + 10 : 0);
    Status status = (*replica)->run_follower();
    if (!status.ok()) {
      log()->critical("follower: {}", status.to_string());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 0;
  }
  ModelRunner& runner = (*replica)->runner();
  if (!serving) return run_one_shot(o, config, runner);
  return serve(o, config, runner, *addresses);
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  CLI::App app{
      "shardwise-shard: one rank of a tensor-parallel replica.\n"
      "  mpirun -np 2 shardwise-shard --model DIR --tp 2 --ids 1,403 --max-new-tokens 8"};
  shardwise::ShardOptions options;
  bool print_config = false;
  shardwise::add_yaml_config(app, print_config);
  shardwise::add_version_flag(app, "shardwise-shard");
  shardwise::add_options(app, options);
  if (auto exit_code = shardwise::parse_command_line(app, argc, argv)) return *exit_code;
  if (print_config) {
    std::cout << app.config_to_str(true, false);
    return shardwise::kExitOk;
  }
  if (options.ids.empty() && (options.coordinator.empty() || options.listen.empty())) {
    std::cerr << "give --ids (one-shot) or --coordinator and --listen (serve)\n";
    return shardwise::kExitUsage;
  }
  if (!shardwise::set_log_level(options.log_level)) {
    std::cerr << "unknown --log-level " << options.log_level << "\n";
    return shardwise::kExitUsage;
  }
  shardwise::set_log_format(options.log_format);
  shardwise::GrpcProcess grpc_process;  // health, reflection, gRPC's log lines through ours
  auto session = shardwise::MpiSession::start(&argc, &argv, options.tp);
  if (!session.ok()) {
    shardwise::log()->error("{}", session.status().to_string());
    // A world that cannot form --tp groups is a launch line at odds with the options.
    return session.status().code() == shardwise::StatusCode::kInvalidArgument
               ? shardwise::kExitUsage
               : shardwise::kExitRuntimeFailure;
  }
  // Ranks sharing a host share its cores: oversubscribed OpenMP/BLAS pools thrash.
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  shardwise::cpu::set_cpu_threads(
      options.threads > 0 ? options.threads : (*session)->config().cpu_threads_per_rank(cores));
  const int code = shardwise::run(options, **session);
  (*session).reset();  // MPI_Finalize, before the process ends
  grpc_process.end(code);
}
