// shardwise-shard: one rank of a tensor-parallel model replica, launched by mpirun or srun.
// World = replicas x TP ranks; rank 0 of each group leads (schedules, samples, broadcasts a
// StepPlan every step) and the others follow. Two modes: one-shot (--ids), where rank 0 prints
// the same JSON as `shardwise generate`; and serve (--coordinator, --listen), where each leader
// serves the Shard gRPC API and registers its replica with the coordinator until SIGTERM.
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

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "common/logging.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/cli/device_flags.h"
#include "shard/cli/generation_output.h"
#include "shard/engine/generator.h"
#include "shard/runner/replica.h"
#include "shard/serve/leader_service.h"

namespace shardwise {
namespace {

struct ShardOptions {
  std::string model_dir = SHARDWISE_DEFAULT_MODEL_DIR;
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
  std::string coordinator;     // serve mode: the coordinator's Registry, e.g. "127.0.0.1:50051"
  std::string coordinator_ca;  // PEM roots that sign the coordinator's TLS certificate
  std::string listen;          // serve mode: replica r's leader listens on this port + r
  std::string model_name;      // serve mode: the name clients use (default: the folder's name)
  int capacity = 8;            // serve mode: concurrent sequences
};

void add_options(CLI::App& app, ShardOptions& o) {
  app.add_option("--model", o.model_dir, "Hugging Face model folder")->capture_default_str();
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
                 "Serve mode: HOST:PORT of the leader's gRPC service (replica r adds r to PORT)");
  app.add_option("--model-name", o.model_name, "Serve mode: model name (default: folder name)");
  app.add_option("--capacity", o.capacity,
                 "Serve mode: concurrent sequences (sizes the KV cache "
                 "when --num-kv-blocks is 0)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
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
    return 1;
  }
  auto output = cli::generation_json(result->token_ids, tokenizer->get());
  if (!output.ok()) {
    log()->error("{}", output.status().to_string());
    return 1;
  }
  if (config.world_rank == 0) std::cout << output->dump() << std::endl;
  return 0;
}

std::atomic<bool> g_stop_requested{false};

void request_stop(int) { g_stop_requested = true; }

// "127.0.0.1:50061" with offset 2 -> "127.0.0.1:50063".
StatusOr<std::string> offset_port(const std::string& address, int offset) {
  const size_t colon = address.rfind(':');
  int port = 0;
  try {
    port = std::stoi(address.substr(colon == std::string::npos ? 0 : colon + 1));
  } catch (const std::exception&) {
    return invalid_argument("--listen {}: expected HOST:PORT", address);
  }
  if (colon == std::string::npos || port <= 0) {
    return invalid_argument("--listen {}: expected HOST:PORT", address);
  }
  return address.substr(0, colon + 1) + std::to_string(port + offset);
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
int serve(const ShardOptions& o, const ParallelConfig& config, ModelRunner& runner) {
  StatusOr<std::string> listen = offset_port(o.listen, config.replica());
  StatusOr<v1::ModelCard> card = read_model_card(o.model_dir);
  if (!listen.ok() || !card.ok()) {
    log()->error("{}", (listen.ok() ? card.status() : listen.status()).to_string());
    return 2;
  }
  card->set_name(o.model_name.empty() ? std::filesystem::path(o.model_dir).filename().string()
                                      : o.model_name);
  card->set_address(*listen);
  card->set_context_length(runner.config().max_position_embeddings);
  card->set_device(o.device.device == Device::kCuda ? v1::DEVICE_CUDA : v1::DEVICE_CPU);
  card->set_tp(config.tp_size);
  card->set_capacity(o.capacity);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);

  EngineOptions engine_options;
  engine_options.scheduler.max_num_seqs = o.capacity;
  EngineLoop loop(runner, engine_options);
  ShardService service(loop);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(*listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    log()->error("cannot listen on {}", *listen);
    return 2;
  }
  log()->info("serving {} on {}", card->name(), *listen);
  {
    Registrar registrar(o.coordinator, coordinator_credentials(o.coordinator_ca), *card, loop);
    while (!g_stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log()->info("shutting down: draining requests");
  }
  service.drain();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  loop.stop();
  return 0;
}

int run(const ShardOptions& o, const MpiSession& session) {
  const ParallelConfig& config = session.config();
  if (Status status = check_device_options(o.device); !status.ok()) {
    log()->error("{}", status.to_string());
    return 2;
  }
  const std::chrono::milliseconds timeout(static_cast<long>(o.collective_timeout_s * 1000));
  MpiCommunicator comm(session.tp_group(), timeout);
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
    return 1;
  }
  if (!config.is_leader()) {
    Status status = (*replica)->run_follower();
    if (!status.ok()) {
      log()->critical("follower: {}", status.to_string());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 0;
  }
  ModelRunner& runner = (*replica)->runner();
  if (!o.ids.empty()) return run_one_shot(o, config, runner);
  return serve(o, config, runner);
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  CLI::App app{
      "shardwise-shard: one rank of a tensor-parallel replica.\n"
      "  mpirun -np 2 shardwise-shard --model DIR --tp 2 --ids 1,403 --max-new-tokens 8"};
  shardwise::ShardOptions options;
  shardwise::add_options(app, options);
  CLI11_PARSE(app, argc, argv);
  if (options.ids.empty() && (options.coordinator.empty() || options.listen.empty())) {
    std::cerr << "give --ids (one-shot) or --coordinator and --listen (serve)\n";
    return 2;
  }
  if (!shardwise::set_log_level(options.log_level)) {
    std::cerr << "unknown --log-level " << options.log_level << "\n";
    return 2;
  }
  auto session = shardwise::MpiSession::start(&argc, &argv, options.tp);
  if (!session.ok()) {
    shardwise::log()->error("{}", session.status().to_string());
    return 2;
  }
  // Ranks sharing a host share its cores: oversubscribed OpenMP/BLAS pools thrash.
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  shardwise::cpu::set_cpu_threads(
      options.threads > 0 ? options.threads : (*session)->config().cpu_threads_per_rank(cores));
  return shardwise::run(options, **session);
}
