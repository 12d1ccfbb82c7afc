// Offline throughput of the serving engine, on the CPU or (--device cuda) a GPU: `concurrency`
// requests of
// `input_len` random prompt tokens and `output_len` generated tokens (EOS ignored), all
// submitted at once, greedy. One untimed warm-up run, then the median of `repeats` runs.
//
//   bin/engine_bench --model assets/models/stories260K --concurrency 1,4,16 --threads 2
//   bin/engine_bench --model bench/gpu/configs/llama-3-8b --device cuda --random-weights
//                    --input-len 2048 --output-len 128 --concurrency 1,64 --max-batch-tokens 4096
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "common/logging.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/cli/device_flags.h"
#include "shard/engine/engine.h"
#include "shard/runner/replica.h"

namespace shardwise {
namespace {

struct BenchOptions {
  std::string model_dir = SHARDWISE_SOURCE_DIR "/assets/models/stories260K";
  std::vector<int> concurrency{1, 4, 16};
  int input_len = 128;
  int output_len = 128;
  int repeats = 5;
  int threads = 0;
  int block_size = 16;
  int max_batch_tokens = 512;
  DeviceOptions device;
};

struct RunResult {
  double seconds = 0;
  int64_t steps = 0;
};

int blocks_per_request(const BenchOptions& options) {
  return (options.input_len + options.output_len + options.block_size - 1) / options.block_size;
}

RunResult run_once(ModelRunner& runner, const BenchOptions& options, int concurrency) {
  EngineOptions engine_options;
  engine_options.scheduler.max_batch_tokens = options.max_batch_tokens;
  // Random prompts share no prefix; caching off keeps repeats independent of each other.
  engine_options.enable_prefix_caching = false;
  Engine engine(runner, engine_options);
  std::mt19937 rng(concurrency);
  std::uniform_int_distribution<int32_t> token(3, runner.config().vocab_size - 1);
  for (int r = 0; r < concurrency; ++r) {
    Request request;
    for (int t = 0; t < options.input_len; ++t) request.prompt_ids.push_back(token(rng));
    request.sampling.max_tokens = options.output_len;
    request.sampling.ignore_eos = true;
    auto id = engine.add_request(std::move(request));
    if (!id.ok()) throw std::runtime_error(id.status().to_string());
  }
  const auto start = std::chrono::steady_clock::now();
  while (engine.has_unfinished()) {
    const Status status = engine.step();
    if (!status.ok()) throw std::runtime_error(status.to_string());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (engine.stats().generated_tokens != int64_t{concurrency} * options.output_len) {
    throw std::runtime_error("wrong number of generated tokens");
  }
  return {seconds, engine.stats().steps};
}

int run(const BenchOptions& options) {
  cpu::set_cpu_threads(options.threads);
  // One cache for the largest run.
  const int most = *std::max_element(options.concurrency.begin(), options.concurrency.end());
  ReplicaOptions replica_options;
  replica_options.model_dir = options.model_dir;
  replica_options.device = options.device;
  replica_options.block_size = options.block_size;
  replica_options.num_kv_blocks = most * blocks_per_request(options);
  auto replica = make_replica(replica_options);
  if (!replica.ok()) {
    log()->error("{}", replica.status().to_string());
    return 1;
  }
  ModelRunner& runner = (*replica)->runner();
  std::printf(
      "model %s on the %s, %d input / %d output tokens per request, max %d tokens per step, "
      "median of %d\n",
      options.model_dir.c_str(), std::string(device_name(options.device.device)).c_str(),
      options.input_len, options.output_len, options.max_batch_tokens, options.repeats);
  std::printf("%11s %9s %7s %16s %16s\n", "concurrency", "seconds", "steps", "output tok/s",
              "total tok/s");
  for (int concurrency : options.concurrency) {
    run_once(runner, options, concurrency);  // warm-up
    std::vector<RunResult> runs;
    for (int i = 0; i < options.repeats; ++i)
      runs.push_back(run_once(runner, options, concurrency));
    std::sort(runs.begin(), runs.end(),
              [](const RunResult& a, const RunResult& b) { return a.seconds < b.seconds; });
    const RunResult& median = runs[runs.size() / 2];
    const double output_tokens = double(concurrency) * options.output_len;
    const double total_tokens = double(concurrency) * (options.input_len + options.output_len);
    std::printf("%11d %9.3f %7lld %16.1f %16.1f\n", concurrency, median.seconds,
                static_cast<long long>(median.steps), output_tokens / median.seconds,
                total_tokens / median.seconds);
  }
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  shardwise::BenchOptions options;
  CLI::App app{"Offline throughput of the serving engine on the CPU or a GPU"};
  app.add_option("--model", options.model_dir, "Hugging Face model folder")->capture_default_str();
  app.add_option("--concurrency", options.concurrency, "Requests submitted at once, e.g. 1,4,16")
      ->delimiter(',');
  app.add_option("--input-len", options.input_len, "Prompt tokens per request")
      ->capture_default_str();
  app.add_option("--output-len", options.output_len, "Generated tokens per request")
      ->capture_default_str();
  app.add_option("--repeats", options.repeats, "Timed runs (the median is reported)")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--max-batch-tokens", options.max_batch_tokens, "Tokens per forward pass")
      ->capture_default_str();
  shardwise::cli::add_device_flags(&app, options.device);
  CLI11_PARSE(app, argc, argv);
  return shardwise::run(options);
}
