// The CPU model's load time, memory, prefill and decode speed, in one process or tensor-parallel
// under mpirun, against the read bandwidth measured in the same run (bench/cpu/README.md):
//
//   bin/cpu_model_bench --model DIR --threads 2 [--weight-dtype int8] [--concurrency 1,4,16]
//   mpirun -np 2 bin/cpu_model_bench --model DIR --threads 1
//
// Prefill: one sequence of --prompt-len tokens in one forward pass (logits of its last token).
// Decode at concurrency c: c sequences, each prefilled to --prompt-len tokens (untimed), then
// --decode-steps forward passes of one token per sequence (greedy). Each figure is the median
// of --rounds, after a warm-up round. Decode's share of the bandwidth counts the weight bytes
// of every rank per step (what a step must read; the KV cache is printed apart).
#include <mpi.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/cpu/read_bandwidth.h"
#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "common/logging.h"
#include "kernels/cpu/cpu_threads.h"
#include "kernels/cpu/matmul.h"
#include "models/llama_model.h"

namespace shardwise {
namespace {

struct Options {
  std::string model_dir;
  std::string weight_dtype = "auto";
  std::string kv_cache_dtype = "f32";
  std::string isa;
  int threads = 0;
  int prompt_len = 128;
  int decode_steps = 32;
  std::vector<int> concurrency{1, 4, 16};
  int rounds = 3;
  int block_size = 16;
  bool probe = true;
  bool amx = true;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// VmRSS / VmHWM of this process in GiB.
double status_gib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / (1 << 20);
  }
  return 0;
}

double sum_over_ranks(double value) {
  double total = 0;
  MPI_Allreduce(&value, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return total;
}

// c sequences with room for prompt_len + decode_steps tokens each, in consecutive blocks.
class Sequences {
 public:
  Sequences(int count, int length, int block_size)
      : count_(count),
        blocks_per_seq_((length + block_size - 1) / block_size),
        block_size_(block_size) {}
  int num_blocks() const { return count_ * blocks_per_seq_; }

  // Positions [first, first + n) of sequence s (a prefill chunk), or of every sequence (decode).
  ForwardBatch batch(const std::vector<int>& seqs, int first, int n,
                     const std::vector<int32_t>& tokens) const {
    ForwardBatch b;
    b.max_blocks_per_seq = blocks_per_seq_;
    for (int s = 0; s < count_; ++s) {
      for (int i = 0; i < blocks_per_seq_; ++i) b.block_tables.push_back(s * blocks_per_seq_ + i);
    }
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      for (int p = first; p < first + n; ++p) {
        b.token_ids.push_back(tokens[(i * n + (p - first)) % tokens.size()]);
        b.positions.push_back(p);
        b.seq_index.push_back(seqs[i]);
        b.slot_mapping.push_back((seqs[i] * blocks_per_seq_ + p / block_size_) * block_size_ +
                                 p % block_size_);
      }
      b.logit_rows.push_back(static_cast<int32_t>((i + 1) * n - 1));
    }
    return b;
  }

 private:
  int count_, blocks_per_seq_, block_size_;
};

std::vector<int32_t> argmax_rows(const std::vector<float>& logits, int vocab) {
  std::vector<int32_t> ids;
  for (std::size_t r = 0; r < logits.size() / vocab; ++r) {
    const auto row = logits.begin() + r * vocab;
    ids.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
  }
  return ids;
}

std::vector<float> forward(LlamaModel& model, const ForwardBatch& batch, PagedKvCache& cache) {
  auto logits = model.forward(batch, cache);
  if (!logits.ok()) throw std::runtime_error(logits.status().to_string());
  return std::move(logits).value();
}

// Seconds of one prefill of prompt_len tokens.
double time_prefill(LlamaModel& model, const Options& o, const std::vector<int32_t>& prompt) {
  const Sequences seqs(1, o.prompt_len, o.block_size);
  PagedKvCache cache = model.make_kv_cache(seqs.num_blocks(), o.block_size);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = Clock::now();
  forward(model, seqs.batch({0}, 0, o.prompt_len, prompt), cache);
  return seconds_since(start);
}

// Seconds of decode_steps steps of `c` sequences at context prompt_len.
double time_decode(LlamaModel& model, const Options& o, int c, const std::vector<int32_t>& prompt) {
  const Sequences seqs(c, o.prompt_len + o.decode_steps, o.block_size);
  PagedKvCache cache = model.make_kv_cache(seqs.num_blocks(), o.block_size);
  std::vector<int> all;
  std::vector<int32_t> next;
  for (int s = 0; s < c; ++s) {
    all.push_back(s);
    const auto logits = forward(model, seqs.batch({s}, 0, o.prompt_len, prompt), cache);
    next.push_back(argmax_rows(logits, model.config().vocab_size)[0]);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = Clock::now();
  for (int step = 0; step < o.decode_steps; ++step) {
    next = argmax_rows(forward(model, seqs.batch(all, o.prompt_len + step, 1, next), cache),
                       model.config().vocab_size);
  }
  return seconds_since(start);
}

int run(const Options& o, const MpiSession& session) {
  const bool leader = session.config().world_rank == 0;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  MpiCommunicator comm(session.tp_group(), std::chrono::seconds(600));
  bench::ReadBandwidth bandwidth{0, 0};
  if (o.probe && leader) {
    cpu::set_cpu_threads(cores);  // the machine's bandwidth, all cores
    bandwidth = bench::measure_read_bandwidth();
  }
  // The probe's array is freed; restart the peak-RSS count (Linux: 5 resets VmHWM).
  std::ofstream("/proc/self/clear_refs") << "5";
  // Not MPI_Barrier: Open MPI's busy-polls a core, which the probe then lacks (half the
  // bandwidth at TP=2 on 2 cores); the communicator's barrier sleeps while it waits.
  comm.barrier();
  cpu::set_cpu_threads(o.threads > 0 ? o.threads : session.config().cpu_threads_per_rank(cores));
  cpu::allow_amx(o.amx);

  CpuModelOptions options;
  auto weight_type = parse_weight_dtype(o.weight_dtype);
  auto kv = parse_kv_cache_dtype(o.kv_cache_dtype);
  if (!weight_type.ok() || !kv.ok()) {
    log()->error("{}", (weight_type.ok() ? kv.status() : weight_type.status()).to_string());
    return 1;
  }
  options.weight_type = *weight_type;
  options.kv_cache = *kv;
  if (!o.isa.empty()) {
    auto isa = parse_cpu_isa(o.isa);
    if (!isa.ok()) {
      log()->error("{}", isa.status().to_string());
      return 1;
    }
    options.isa = *isa;
  }
  const auto load_start = Clock::now();
  auto loaded = load_llama_model(o.model_dir, comm, options);
  if (!loaded.ok()) {
    log()->error("{}", loaded.status().to_string());
    return 1;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double load_seconds = seconds_since(load_start);
  LlamaModel& model = **loaded;
  const double weight_bytes = sum_over_ranks(static_cast<double>(model.weight_bytes()));
  const double rss_after_load = sum_over_ranks(status_gib("VmRSS"));
  const auto& config = model.config();
  std::vector<int32_t> prompt;
  for (int t = 0; t < o.prompt_len; ++t) prompt.push_back(3 + (t * 7919) % (config.vocab_size - 3));

  if (leader) {
    std::printf("cpu %s\n", cpu::cpu_description().c_str());
    if (o.probe) {
      std::printf("read_bandwidth_gbps best %.2f median %.2f (%d threads)\n", bandwidth.best_gbps,
                  bandwidth.median_gbps, cores);
    }
    std::printf(
        "model %s: tp %d x %d threads, weights %s (%.3f GB packed, all ranks), kv %s, isa %s\n",
        o.model_dir.c_str(), comm.size(), omp_get_max_threads(), o.weight_dtype.c_str(),
        weight_bytes / 1e9, o.kv_cache_dtype.c_str(),
        std::string(cpu::cpu_isa_name(options.isa)).c_str());
    std::printf("load_seconds %.2f rss_after_load_gib %.3f\n", load_seconds, rss_after_load);
  }
  std::vector<double> prefill;
  time_prefill(model, o, prompt);  // warm-up
  for (int r = 0; r < o.rounds; ++r) prefill.push_back(time_prefill(model, o, prompt));
  if (leader) {
    std::printf("prefill prompt=%d tok/s %.1f (median of %d rounds)\n", o.prompt_len,
                o.prompt_len / median(prefill), o.rounds);
    for (double t : prefill) std::printf("  prefill round tok/s %.1f\n", o.prompt_len / t);
  }
  for (int c : o.concurrency) {
    std::vector<double> times;
    time_decode(model, o, c, prompt);  // warm-up
    for (int r = 0; r < o.rounds; ++r) times.push_back(time_decode(model, o, c, prompt));
    const double steps_per_second = o.decode_steps / median(times);
    const int kv_elements = config.num_key_value_heads * config.head_dim;
    const double kv_bytes = 2.0 * c * (o.prompt_len + o.decode_steps / 2) *
                            config.num_hidden_layers * kv_elements *
                            (options.kv_cache == KvCacheType::kBF16 ? 2 : 4);
    if (leader) {
      const double weight_gbps = weight_bytes * steps_per_second / 1e9;
      std::printf("decode c=%d tok/s %.2f (per sequence %.2f) weights %.2f GB/s", c,
                  c * steps_per_second, steps_per_second, weight_gbps);
      if (o.probe)
        std::printf(" = %.0f%% of read bandwidth", 100 * weight_gbps / bandwidth.best_gbps);
      std::printf(", kv %.3f GB/step\n", kv_bytes / 1e9);
      for (double t : times)
        std::printf("  decode c=%d round tok/s %.2f\n", c, c * o.decode_steps / t);
    }
  }
  const double peak_rss = sum_over_ranks(status_gib("VmHWM"));
  if (leader) std::printf("peak_rss_gib %.3f (all ranks)\n", peak_rss);
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines appear as measured, also through a pipe
  shardwise::Options o;
  CLI::App app{"CPU model: load, memory, prefill and decode against read bandwidth"};
  app.add_option("--model", o.model_dir, "Hugging Face model folder")->required();
  app.add_option("--weight-dtype", o.weight_dtype, "auto, f32, f16, bf16 or int8")
      ->capture_default_str();
  app.add_option("--kv-cache-dtype", o.kv_cache_dtype, "f32 or bf16")->capture_default_str();
  app.add_option("--isa", o.isa, "scalar, avx2 or avx512 (default: the best this CPU has)");
  app.add_option("--threads", o.threads, "OpenMP threads per rank (0: the host's cores / ranks)")
      ->capture_default_str();
  app.add_option("--prompt-len", o.prompt_len, "Prompt tokens")->capture_default_str();
  app.add_option("--decode-steps", o.decode_steps, "Timed decode steps")->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "Sequences decoded together")->delimiter(',');
  app.add_option("--rounds", o.rounds, "Timed rounds (median)")->capture_default_str();
  app.add_flag("!--no-probe", o.probe, "Skip the read-bandwidth probe");
  app.add_flag("!--no-amx", o.amx,
               "Keep bf16 matmuls on the AVX-512 kernels where the CPU has AMX");
  CLI11_PARSE(app, argc, argv);
  auto session = shardwise::MpiSession::start(&argc, &argv, shardwise::MpiSession::kWholeWorld);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
    return 2;
  }
  try {
    return shardwise::run(o, **session);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
