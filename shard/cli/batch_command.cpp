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
#include "shard/cli/openai_batch.h"
#include "shard/engine/engine.h"
#include "shard/runner/replica.h"
#include "tokenizer/chat_messages.h"
#include "tokenizer/incremental_decoder.h"
#include "tokenizer/stop_strings.h"
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
  // Chat messages through the model's chat template, then encoded.
  StatusOr<std::vector<int32_t>> encode_chat(const json& messages) const {
    if (!tokenizer_ || !tokenizer_->has_chat_template()) {
      return failed_precondition("\"messages\" need the model's chat template");
    }
    SW_ASSIGN_OR_RETURN(json normalised, template_messages(messages));
    SW_ASSIGN_OR_RETURN(std::string text, tokenizer_->apply_chat_template(normalised, true));
    // The template writes the special tokens (BOS) itself.
    return tokenizer_->encode(text, /*add_special_tokens=*/false);
  }
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }

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

json result_line(const json& id, const BatchResult& result, const TextCodec& codec) {
  json line = {{"id", id}, {"token_ids", result.tokens}};
  if (codec.tokenizer()) line["text"] = result.text;
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

// One engine request: choice `choice` of input line `item`.
struct Job {
  std::size_t item = 0;
  int choice = 0;
  Request request;
};

// A line's prompt as token ids: given, encoded, or rendered through the chat template.
StatusOr<std::vector<int32_t>> prompt_of(BatchItem& item, const TextCodec& codec) {
  if (item.prompt) return codec.encode(*item.prompt);
  if (!item.messages.is_null()) return codec.encode_chat(item.messages);
  return std::move(item.token_ids);
}

// The engine requests of the input lines, prompts encoded. A bad shardwise line fails naming
// it; an OpenAI line's problem becomes its item's error, answered in its output line.
std::vector<Job> build_jobs(const BatchOptions& options, std::vector<NumberedItem>& items,
                            const TextCodec& codec, std::vector<int>& prompt_tokens) {
  std::vector<Job> jobs;
  prompt_tokens.assign(items.size(), 0);
  for (std::size_t i = 0; i < items.size(); ++i) {
    BatchItem& item = items[i].item;
    if (!item.error.ok()) continue;
    Status status = ok_status();
    if (!item.stop.empty() && !codec.tokenizer()) {
      status = failed_precondition("\"stop\" needs the model's tokenizer.json");
    }
    StatusOr<std::vector<int32_t>> ids = prompt_of(item, codec);
    if (status.ok()) status = ids.status();
    if (!status.ok() && item.format == BatchFormat::kOpenAi) {
      item.error = status;
      continue;
    }
    if (!status.ok()) {
      fail(status.with_context(fmt::format("{} line {}", options.input, items[i].line)));
    }
    prompt_tokens[i] = static_cast<int>(ids->size());
    for (int choice = 0; choice < item.n; ++choice) {
      Job job{i, choice, {}};
      job.request.prompt_ids = *ids;
      job.request.sampling = item.sampling;
      job.request.sampling.seed += choice;
      jobs.push_back(std::move(job));
    }
  }
  return jobs;
}

int auto_num_blocks(const LlamaConfig& c, const std::vector<Job>& jobs, int block_size) {
  // K and V, every layer, fp32.
  const double block_bytes =
      2.0 * c.num_hidden_layers * block_size * c.num_key_value_heads * c.head_dim * sizeof(float);
  long long all_at_once = 0, largest = 1;
  for (const Job& job : jobs) {
    const Request& request = job.request;
    const long long blocks =
        (request.prompt_ids.size() + request.sampling.max_tokens + block_size - 1) / block_size;
    all_at_once += blocks;
    largest = std::max(largest, blocks);
  }
  const long long affordable = static_cast<long long>(kAutoCacheBytes / block_bytes);
  return static_cast<int>(std::max(largest, std::min(all_at_once, affordable)));
}

// Follows one request's tokens as text, cut at its line's stop strings (the engine request is
// cancelled at a match, which then finishes with "stop").
class TextTracker {
 public:
  TextTracker(const Tokenizer* tokenizer, const std::vector<std::string>& stop) : matcher_(stop) {
    if (tokenizer) decoder_.emplace(*tokenizer, /*skip_special_tokens=*/true);
  }
  // Returns true when a stop string matched.
  bool push(int32_t token, BatchResult& result) {
    if (!decoder_ || matcher_.matched()) return false;
    result.text += matcher_.push(value_or_fail(decoder_->push(token)));
    return matcher_.matched();
  }
  void finish(BatchResult& result) {
    if (!decoder_) return;
    if (matcher_.matched()) {
      result.finish_reason = "stop";
      return;
    }
    result.text += matcher_.push(value_or_fail(decoder_->flush()));
    result.text += matcher_.flush();
  }

 private:
  std::optional<IncrementalDecoder> decoder_;
  StopStringMatcher matcher_;
};

void run_batch(const BatchOptions& options) {
  auto items = read_items(options.input);
  const TextCodec codec(options.model_dir);
  std::vector<int> prompt_tokens;
  std::vector<Job> jobs = build_jobs(options, items, codec, prompt_tokens);

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
    replica_options.num_kv_blocks = auto_num_blocks(config, jobs, options.block_size);
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
  log()->info("batch: {} requests, KV cache {} blocks of {} tokens", jobs.size(), num_blocks,
              options.block_size);

  // Every request is validated before any step runs.
  std::vector<std::vector<BatchResult>> results(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) results[i].resize(items[i].item.n);
  std::vector<TextTracker> trackers;
  std::vector<RequestId> ids(jobs.size());
  trackers.reserve(jobs.size());
  int done = 0;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    NumberedItem& numbered = items[jobs[j].item];
    BatchResult& result = results[jobs[j].item][jobs[j].choice];
    TextTracker& tracker = trackers.emplace_back(codec.tokenizer(), numbered.item.stop);
    jobs[j].request.on_event = [&, j](const StreamEvent& event) {
      if (event.token) {
        result.tokens.push_back(*event.token);
        if (tracker.push(*event.token, result)) engine.cancel(ids[j]);
      }
      if (event.logprobs) result.logprobs.push_back(*event.logprobs);
      if (event.finish_reason) {
        result.finish_reason = finish_reason_name(*event.finish_reason);
        result.error = event.error;
        tracker.finish(result);
        ++done;
      }
    };
    auto id = engine.add_request(std::move(jobs[j].request));
    if (id.ok()) {
      ids[j] = *id;
    } else if (numbered.item.format == BatchFormat::kOpenAi) {
      numbered.item.error = id.status();
      ++done;
    } else {
      fail(id.status().with_context(fmt::format("{} line {}", options.input, numbered.line)));
    }
  }

  const auto start = Clock::now();
  ProgressBar progress(static_cast<int>(jobs.size()));
  while (engine.has_unfinished()) {
    const Status status = engine.step();
    if (!status.ok()) fail(status);
    progress.update(done, engine.stats().generated_tokens);
  }
  progress.finish(done, engine.stats().generated_tokens);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::ofstream out(options.output);
  if (!out) fail(not_found("cannot write the output file {}", options.output));
  for (std::size_t i = 0; i < items.size(); ++i) {
    const BatchItem& item = items[i].item;
    const json line = item.format == BatchFormat::kOpenAi
                          ? openai_output_line(item, results[i], prompt_tokens[i],
                                               codec.tokenizer(), items[i].line)
                          : result_line(item.id, results[i][0], codec);
    out << line.dump() << "\n";
  }
  const EngineStats& stats = engine.stats();
  log()->info(
      "batch: {} requests, {} generated tokens in {:.3f} s: {:.1f} tokens/s ({} steps, {} "
      "tokens scheduled, {} preemptions, {} prefix-cache block hits)",
      jobs.size(), stats.generated_tokens, seconds, stats.generated_tokens / seconds, stats.steps,
      stats.scheduled_tokens, stats.preemptions,
      engine.block_manager().counters().prefix_hit_blocks);
}

}  // namespace

void add_batch_command(CLI::App& app) {
  auto options = std::make_shared<BatchOptions>();
  auto* batch = app.add_subcommand(
      "batch",
      "Offline batch inference: one request per input line ({\"id\", \"token_ids\"} or "
      "{\"id\", \"prompt\"}, plus OpenAI sampling parameters; or OpenAI's batch format "
      "{\"custom_id\", \"method\", \"url\", \"body\"}), one result per output line");
  batch->add_option("--model", options->model_dir, "Hugging Face model folder")
      ->capture_default_str()
      ->check(existing_model_dir());
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
