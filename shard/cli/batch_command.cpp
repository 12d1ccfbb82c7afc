#include "shard/cli/batch_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "shard/cli/batch_requests.h"
#include "shard/cli/cli_support.h"
#include "shard/cli/device_flags.h"
#include "shard/cli/generation_output.h"
#include "shard/engine/engine.h"
#include "shard/runner/replica.h"
#include "tokenizer/tokenizer.h"

namespace shardwise::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BatchOptions {
  std::string model_dir = default_model_dir();
  std::string input;
  std::string output;
  int num_kv_blocks = 0;  // 0: enough for every request at once, up to kAutoCacheBytes
  int block_size = 16;
  int max_batch_tokens = 512;
  int max_num_seqs = 256;
  bool no_prefix_caching = false;
  int tp = 1;                        // > 1: run as one TP group under mpirun, rank 0 writes
  double collective_timeout_s = 60;  // with --tp: seconds before a stalled collective aborts
  DeviceOptions device;
};

// The automatic cache size stops here: about a Llama-3-8B cache of 4096 tokens in fp32.
constexpr double kAutoCacheBytes = 2.0 * (1 << 30);

struct NumberedItem {
  int line = 0;  // 1-based line in the input file
  BatchItem item;
};

std::vector<NumberedItem> read_items(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(not_found("cannot read the input file {}", path));
  std::vector<NumberedItem> items;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto item = parse_batch_line(text, static_cast<uint64_t>(line));
    if (!item.ok()) fail(item.status().with_context(fmt::format("{} line {}", path, line)));
    items.push_back({line, std::move(item).value()});
  }
  if (items.empty()) fail(invalid_argument("{} holds no requests", path));
  return items;
}

// Decodes ids to text and encodes prompts, when the model folder has a tokenizer.
class TextCodec {
 public:
  explicit TextCodec(const std::filesystem::path& model_dir)
      : tokenizer_(value_or_fail(load_tokenizer_if_present(model_dir))) {}

  StatusOr<std::vector<int32_t>> encode(const std::string& text) const {
    if (tokenizer_) return tokenizer_->encode(text, /*add_special_tokens=*/true);
    return failed_precondition("\"prompt\" needs the model's tokenizer.json; give token_ids");
  }
  std::optional<std::string> decode(const std::vector<int32_t>& ids) const {
    if (tokenizer_) return value_or_fail(tokenizer_->decode(ids, /*skip_special_tokens=*/true));
    return std::nullopt;
  }

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
};

// One line on stderr, redrawn at most ten times a second.
class ProgressBar {
 public:
  explicit ProgressBar(int total) : total_(total), start_(Clock::now()) {}

  void update(int done, int64_t tokens, bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = total_ == 0 ? kWidth : kWidth * done / total_;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\r[%s%s] %d/%d requests, %lld tokens, %.1f tokens/s",
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), done,
                 total_, static_cast<long long>(tokens), seconds > 0 ? tokens / seconds : 0.0);
    std::fflush(stderr);
  }
  void finish(int done, int64_t tokens) {
    update(done, tokens, /*force=*/true);
    std::fputc('\n', stderr);
  }

 private:
  int total_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
};

struct Result {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprobs> logprobs;
  std::string finish_reason;
  std::string error;
};

int auto_num_blocks(const LlamaConfig& c, const std::vector<Request>& requests, int block_size) {
  // K and V, every layer, fp32.
  const double block_bytes =
      2.0 * c.num_hidden_layers * block_size * c.num_key_value_heads * c.head_dim * sizeof(float);
  long long all_at_once = 0, largest = 0;
  for (const auto& request : requests) {
    const long long blocks =
        (request.prompt_ids.size() + request.sampling.max_tokens + block_size - 1) / block_size;
    all_at_once += blocks;
    largest = std::max(largest, blocks);
  }
  const long long affordable = static_cast<long long>(kAutoCacheBytes / block_bytes);
  return static_cast<int>(std::max(largest, std::min(all_at_once, affordable)));
}

json result_line(const json& id, const Result& result, const TextCodec& codec) {
  json line = {{"id", id}, {"token_ids", result.tokens}};
  if (auto text = codec.decode(result.tokens)) line["text"] = *text;
  line["finish_reason"] = result.finish_reason;
  if (!result.error.empty()) line["error"] = result.error;
  if (!result.logprobs.empty()) {
    json logprobs = json::array();
    for (const auto& lp : result.logprobs) {
      logprobs.push_back({{"logprob", lp.logprob}, {"top_logprobs", lp.top}});
    }
    line["logprobs"] = logprobs;
  }
  return line;
}

// The engine requests of the input lines, prompts encoded; a bad line fails naming it.
std::vector<Request> build_requests(const BatchOptions& options, std::vector<NumberedItem>& items,
                                    const TextCodec& codec) {
  std::vector<Request> requests(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    BatchItem& item = items[i].item;
    if (item.prompt) {
      auto ids = codec.encode(*item.prompt);
      if (!ids.ok()) {
        fail(ids.status().with_context(fmt::format("{} line {}", options.input, items[i].line)));
      }
      item.token_ids = std::move(ids).value();
    }
    requests[i].prompt_ids = std::move(item.token_ids);
    requests[i].sampling = std::move(item.sampling);
  }
  return requests;
}

void run_batch(const BatchOptions& options) {
  auto items = read_items(options.input);
  const TextCodec codec(options.model_dir);
  std::vector<Request> requests = build_requests(options, items, codec);

  // With --tp, every rank reads the same input (so all size the cache alike) and loads its
  // slice; followers then execute the leader's StepPlans until it shuts them down.
  const std::chrono::milliseconds timeout(static_cast<long>(options.collective_timeout_s * 1000));
  std::unique_ptr<MpiSession> session;
  std::unique_ptr<Communicator> comm;
  if (options.tp > 1) {
    session = value_or_fail(MpiSession::start(nullptr, nullptr, options.tp));
    if (session->config().num_replicas() != 1) {
      fail(invalid_argument("batch --tp {} runs one replica: launch it with mpirun -np {}",
                            options.tp, options.tp));
    }
    comm = std::make_unique<MpiCommunicator>(session->tp_group(), timeout);
  } else {
    comm = std::make_unique<SoloCommunicator>();
  }
  ReplicaOptions replica_options;
  replica_options.model_dir = options.model_dir;
  replica_options.device = options.device;
  replica_options.block_size = options.block_size;
  // 0 on the GPU: the cache takes the memory budget (--kv-cache-gb). On the CPU: every request
  // at once, up to kAutoCacheBytes.
  replica_options.num_kv_blocks = options.num_kv_blocks;
  if (options.num_kv_blocks == 0 && options.device.device == Device::kCpu) {
    const LlamaConfig config = value_or_fail(load_llama_config(options.model_dir));
    replica_options.num_kv_blocks = auto_num_blocks(config, requests, options.block_size);
  }
  auto replica = value_or_fail(make_replica(replica_options, {session.get(), comm.get(), timeout}));
  if (comm->rank() != 0) {
    if (const Status status = replica->run_follower(); !status.ok()) fail(status);
    return;
  }
  ModelRunner& runner = replica->runner();
  const int num_blocks = runner.num_kv_blocks();
  EngineOptions engine_options;
  engine_options.scheduler.max_batch_tokens = options.max_batch_tokens;
  engine_options.scheduler.max_num_seqs = options.max_num_seqs;
  engine_options.enable_prefix_caching = !options.no_prefix_caching;
  Engine engine(runner, engine_options);
  log()->info("batch: {} requests, KV cache {} blocks of {} tokens", requests.size(), num_blocks,
              options.block_size);

  // Every request is validated before any step runs.
  std::vector<Result> results(requests.size());
  int done = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i].on_event = [&result = results[i], &done](const StreamEvent& event) {
      if (event.token) result.tokens.push_back(*event.token);
      if (event.logprobs) result.logprobs.push_back(*event.logprobs);
      if (event.finish_reason) {
        result.finish_reason = finish_reason_name(*event.finish_reason);
        result.error = event.error;
        ++done;
      }
    };
    auto id = engine.add_request(std::move(requests[i]));
    if (!id.ok()) {
      fail(id.status().with_context(fmt::format("{} line {}", options.input, items[i].line)));
    }
  }

  const auto start = Clock::now();
  ProgressBar progress(static_cast<int>(results.size()));
  while (engine.has_unfinished()) {
    const Status status = engine.step();
    if (!status.ok()) fail(status);
    progress.update(done, engine.stats().generated_tokens);
  }
  progress.finish(done, engine.stats().generated_tokens);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::ofstream out(options.output);
  if (!out) fail(not_found("cannot write the output file {}", options.output));
  for (std::size_t i = 0; i < results.size(); ++i) {
    out << result_line(items[i].item.id, results[i], codec).dump() << "\n";
  }
  const EngineStats& stats = engine.stats();
  log()->info(
      "batch: {} requests, {} generated tokens in {:.3f} s: {:.1f} tokens/s ({} steps, {} "
      "tokens scheduled, {} preemptions, {} prefix-cache block hits)",
      results.size(), stats.generated_tokens, seconds, stats.generated_tokens / seconds,
      stats.steps, stats.scheduled_tokens, stats.preemptions,
      engine.block_manager().counters().prefix_hit_blocks);
}

}  // namespace

void add_batch_command(CLI::App& app) {
  auto options = std::make_shared<BatchOptions>();
  auto* batch = app.add_subcommand(
      "batch",
      "Offline batch inference: one request per input line ({\"id\", \"token_ids\"} or "
      "{\"id\", \"prompt\"}, plus OpenAI sampling parameters), one result per output line");
  batch->add_option("--model", options->model_dir, "Hugging Face model folder")
      ->capture_default_str();
  batch->add_option("--input", options->input, "Requests, JSON Lines")->required();
  batch
      ->add_option("--output", options->output,
                   "Results, JSON Lines in input order: {\"id\", \"token_ids\", \"text\", "
                   "\"finish_reason\"}")
      ->required();
  batch
      ->add_option("--num-kv-blocks", options->num_kv_blocks,
                   "KV cache blocks (0: enough for all requests at once, up to 2 GiB)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  batch->add_option("--block-size", options->block_size, "Tokens per KV cache block")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  batch
      ->add_option("--max-batch-tokens", options->max_batch_tokens,
                   "Tokens per forward pass (decode tokens plus prefill chunks)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  batch->add_option("--max-num-seqs", options->max_num_seqs, "Sequences per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  batch->add_flag("--no-prefix-caching", options->no_prefix_caching,
                  "Do not reuse the KV blocks of shared prompt prefixes");
  batch
      ->add_option("--tp", options->tp,
                   "Tensor-parallel degree; > 1 under mpirun -np TP (rank 0 writes the output)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  batch
      ->add_option("--collective-timeout", options->collective_timeout_s,
                   "With --tp: seconds a collective may take before the group is aborted")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  add_device_flags(batch, options->device);
  batch->callback([options] { run_batch(*options); });
}

}  // namespace shardwise::cli
