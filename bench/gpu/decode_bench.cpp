// The GPU forward pass end to end on synthetic bf16 weights (a config.json-only folder):
//   - decode: `--batch` sequences of `--context` cached tokens, one token each per step, sampled
//     greedily on the device (only ids come back), CUDA graphs unless --no-cuda-graphs;
//     tokens/s and the step time (median of --steps after --warmup, CUDA events around the
//     whole step, host work included), against the roofline weight bytes / --peak-tbps
//     (the card's measured device-to-device copy rate: bin/bandwidth_bench);
//   - prefill: one sequence of --prefill tokens in one forward pass, in TFLOP/s, counting
//     2 * (this rank's matmul parameters) * tokens + causal attention 2 * 2 * heads * head_dim *
//     tokens * (tokens + 1) / 2 per layer (QK^T and PV), plus lm_head for the one logit row.
// Tensor parallelism without the GPUs: --tp N --rank r builds rank r's slice and replaces every
// collective with a device copy of the same size (all-reduce: one copy of the message;
// all-gather: N copies), so the step time counts their memory traffic, not NVLink's. Each decode
// batch is then timed again with the all-reduces left out altogether: the compute-only step
// that bench/gpu/project_tp.py adds a communication model to.
//
//   bin/decode_bench                                     # Llama-3-8B shapes, TP=1
//   bin/decode_bench --model bench/gpu/configs/llama-3-70b --tp 4
//   bin/decode_bench --model bench/gpu/configs/llama-3-70b --tp 8 --batch 1,16,64
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "common/check.h"
#include "common/logging.h"
#include "kernels/cuda/device.h"
#include "models/cuda_llama_model.h"

namespace shardwise {
namespace {

struct BenchOptions {
  std::string model_dir = SHARDWISE_SOURCE_DIR "/bench/gpu/configs/llama-3-8b";
  double peak_tbps = 3.0;  // memory bandwidth of the roofline: the H100's measured copy rate
  int tp = 1;
  int rank = 0;
  std::vector<int> batch{1};
  int context = 128;
  int steps = 64;
  int warmup = 8;
  int prefill = 2048;
  int block_size = 16;
  bool no_cuda_graphs = false;
};

// Rank `rank` of a group of `size`, communicating with nobody: each collective is a device copy
// of the bytes it would move, on the same stream, so graphs capture it and timings count it.
class CopyStandInCommunicator final : public DeviceCommunicator {
 public:
  CopyStandInCommunicator(int rank, int size) : rank_(rank), size_(size) {}
  ~CopyStandInCommunicator() override {
    if (scratch_ != nullptr) cudaFree(scratch_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Off: all-reduces do nothing (the all-gather still fills the logits).
  void set_all_reduce_stand_in(bool on) { all_reduce_stand_in_ = on; }
  void all_reduce_sum(void* data, std::size_t count, DType dtype, cudaStream_t stream) override {
    if (size_ == 1 || !all_reduce_stand_in_) return;  // a group of one reduces nothing
    const std::size_t bytes = count * dtype_size(dtype);
    CUDA_CHECK(
        cudaMemcpyAsync(scratch(bytes, stream), data, bytes, cudaMemcpyDeviceToDevice, stream));
  }
  void all_gather(const void* send, std::size_t count, void* recv, DType dtype,
                  cudaStream_t stream) override {
    const std::size_t bytes = count * dtype_size(dtype);
    for (int r = 0; r < size_; ++r) {
      CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(recv) + r * bytes, send, bytes,
                                 cudaMemcpyDeviceToDevice, stream));
    }
  }

 private:
  void* scratch(std::size_t bytes, cudaStream_t stream) {
    if (bytes > scratch_bytes_) {
      cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
      CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
      SW_CHECK(capturing == cudaStreamCaptureStatusNone);  // eager runs come first
      CUDA_CHECK(cudaStreamSynchronize(stream));
      if (scratch_ != nullptr) CUDA_CHECK(cudaFree(scratch_));
      CUDA_CHECK(cudaMalloc(&scratch_, bytes));
      scratch_bytes_ = bytes;
    }
    return scratch_;
  }

  int rank_, size_;
  bool all_reduce_stand_in_ = true;
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// `n_seqs` sequences, sequence s owning blocks [s * blocks_per_seq, (s + 1) * blocks_per_seq),
// each adding `count` tokens from position `first`.
ForwardBatch batch_of(int n_seqs, int first, int count, int blocks_per_seq, int block_size,
                      int vocab) {
  ForwardBatch batch;
  batch.max_blocks_per_seq = blocks_per_seq;
  batch.block_tables.resize(static_cast<std::size_t>(n_seqs) * blocks_per_seq);
  std::iota(batch.block_tables.begin(), batch.block_tables.end(), 0);
  for (int s = 0; s < n_seqs; ++s) {
    for (int p = first; p < first + count; ++p) {
      batch.token_ids.push_back((s * 7919 + p * 104729) % vocab);
      batch.positions.push_back(p);
      batch.seq_index.push_back(s);
      batch.slot_mapping.push_back(s * blocks_per_seq * block_size + p);
    }
    batch.logit_rows.push_back(batch.n_tokens() - 1);
  }
  return batch;
}

// Times fn() with CUDA events on `stream` (fn synchronises); milliseconds.
template <typename F>
double timed_ms(cudaStream_t stream, F&& fn) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  CUDA_CHECK(cudaEventRecord(start, stream));
  fn();
  CUDA_CHECK(cudaEventRecord(stop, stream));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return ms;
}

// The median decode step of `n_seqs` sequences in milliseconds; < 0 when their cache does not
// fit (said on stdout).
double measure_decode(CudaLlamaModel& model, const BenchOptions& o, int n_seqs) {
  const LlamaConfig& c = model.config();
  const int tokens_per_seq = o.context + o.warmup + o.steps;
  const int blocks_per_seq = (tokens_per_seq + o.block_size - 1) / o.block_size;
  auto cache = model.make_kv_cache(n_seqs * blocks_per_seq, o.block_size);
  if (!cache.ok()) {
    std::printf("decode batch %d: %s\n", n_seqs, cache.status().to_string().c_str());
    return -1;
  }
  const std::vector<cuda::SamplingRow> greedy(n_seqs);
  auto step = [&](int first, int count) {
    auto tokens = model.forward_and_sample(
        batch_of(n_seqs, first, count, blocks_per_seq, o.block_size, c.vocab_size), *cache, greedy);
    SW_CHECK(tokens.ok());
  };
  step(0, o.context);  // the cached context
  std::vector<double> ms;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    const double t = timed_ms(model.stream(), [&] { step(o.context + i, 1); });
    if (i >= o.warmup) ms.push_back(t);
  }
  return median(ms);
}

void bench_decode(CudaLlamaModel& model, CopyStandInCommunicator& comm, const BenchOptions& o,
                  int n_seqs) {
  const double step_ms = measure_decode(model, o, n_seqs);
  if (step_ms < 0) return;
  const double roofline_ms = model.weight_bytes() / (o.peak_tbps * 1e12) * 1e3;
  std::printf(
      "decode  tp %d rank %d batch %3d context %5d: %8.3f ms/step  %9.1f tokens/s  "
      "(roofline %.3f ms/step = %.1f tokens/s at batch 1; %.0f%% of it; graphs %s, %ld replays)\n",
      o.tp, o.rank, n_seqs, o.context, step_ms, n_seqs * 1e3 / step_ms, roofline_ms,
      1e3 / roofline_ms, 100.0 * roofline_ms / step_ms, model.options().cuda_graphs ? "on" : "off",
      model.graph_replays());
  if (o.tp == 1) return;
  comm.set_all_reduce_stand_in(false);
  const double compute_ms = measure_decode(model, o, n_seqs);
  comm.set_all_reduce_stand_in(true);
  std::printf(
      "decode  tp %d rank %d batch %3d context %5d without all-reduces: %8.3f ms/step "
      "(their stand-in copies took %.3f ms)\n",
      o.tp, o.rank, n_seqs, o.context, compute_ms, step_ms - compute_ms);
}

void bench_prefill(CudaLlamaModel& model, const BenchOptions& o) {
  const LlamaConfig& c = model.config();
  const int n = o.prefill;
  const int blocks = (n + o.block_size - 1) / o.block_size;
  auto cache = model.make_kv_cache(blocks, o.block_size);
  if (!cache.ok()) {
    std::printf("prefill: %s\n", cache.status().to_string().c_str());
    return;
  }
  const ForwardBatch batch = batch_of(1, 0, n, blocks, o.block_size, c.vocab_size);
  std::vector<double> ms;
  for (int i = 0; i < 2 + 5; ++i) {
    const double t = timed_ms(model.stream(), [&] { SW_CHECK(model.forward(batch, *cache).ok()); });
    if (i >= 2) ms.push_back(t);
  }
  const double seconds = median(ms) / 1e3;
  // This rank's matmul parameters per layer: qkv, o_proj, gate_up, down_proj.
  const AttentionPartition& part = model.attention_partition();
  const double hidden = c.hidden_size, hd = c.head_dim;
  const double q = part.local_heads * hd, kv = part.local_kv_heads * hd;
  const double ffn = static_cast<double>(c.intermediate_size) / o.tp;
  const double layer_params = hidden * (q + 2 * kv) + q * hidden + 3 * hidden * ffn;
  const double lm_head_params = hidden * c.vocab_size / o.tp;
  const double matmul_flops = 2 * layer_params * c.num_hidden_layers * n + 2 * lm_head_params;
  const double attention_flops =
      4.0 * part.local_heads * hd * (static_cast<double>(n) * (n + 1) / 2) * c.num_hidden_layers;
  std::printf(
      "prefill tp %d rank %d %5d tokens: %8.2f ms  %7.1f TFLOP/s  (%.2f TFLOP matmuls + %.2f "
      "TFLOP causal attention)\n",
      o.tp, o.rank, n, seconds * 1e3, (matmul_flops + attention_flops) / seconds / 1e12,
      matmul_flops / 1e12, attention_flops / 1e12);
}

int run(const BenchOptions& o) {
  if (cuda::device_count() == 0) {
    std::fprintf(stderr, "decode_bench: no CUDA device\n");
    return 77;
  }
  CopyStandInCommunicator comm(o.rank, o.tp);
  CudaModelOptions options;
  options.dtype = DType::kBF16;
  options.random_weights = true;
  options.cuda_graphs = !o.no_cuda_graphs;
  options.max_graph_batch = std::max(256, *std::max_element(o.batch.begin(), o.batch.end()));
  auto model = load_cuda_llama_model(o.model_dir, comm, options);
  if (!model.ok()) {
    std::fprintf(stderr, "decode_bench: %s\n", model.status().to_string().c_str());
    return 1;
  }
  const LlamaConfig& c = (*model)->config();
  std::printf(
      "%s: %d layers, hidden %d, %d/%d heads, vocab %d; rank %d of TP %d holds %.2f GiB of bf16 "
      "weights (roofline at %.1f TB/s: %.3f ms per decode step)\n",
      o.model_dir.c_str(), c.num_hidden_layers, c.hidden_size, c.num_attention_heads,
      c.num_key_value_heads, c.vocab_size, o.rank, o.tp, (*model)->weight_bytes() / double(1 << 30),
      o.peak_tbps, (*model)->weight_bytes() / (o.peak_tbps * 1e12) * 1e3);
  for (int b : o.batch) bench_decode(**model, comm, o, b);
  if (o.prefill > 0) bench_prefill(**model, o);
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  shardwise::BenchOptions o;
  CLI::App app{"decode_bench: GPU decode tokens/s and prefill TFLOP/s on synthetic bf16 weights"};
  app.add_option("--model", o.model_dir, "Folder with a config.json")->capture_default_str();
  app.add_option("--tp", o.tp, "Tensor-parallel degree of the slice built")->capture_default_str();
  app.add_option("--rank", o.rank, "Which rank's slice")->capture_default_str();
  app.add_option("--batch", o.batch, "Decode batch sizes, e.g. 1,16,64")->delimiter(',');
  app.add_option("--context", o.context, "Cached tokens per sequence before timing")
      ->capture_default_str();
  app.add_option("--steps", o.steps, "Timed decode steps (median reported)")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed decode steps first")->capture_default_str();
  app.add_option("--prefill", o.prefill, "Prefill tokens (0: skip)")->capture_default_str();
  app.add_option("--block-size", o.block_size, "KV cache block size")->capture_default_str();
  app.add_flag("--no-cuda-graphs", o.no_cuda_graphs, "Decode eagerly");
  app.add_option("--peak-tbps", o.peak_tbps, "Memory bandwidth of the roofline (TB/s)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.tp < 1 || o.rank < 0 || o.rank >= o.tp || o.steps < 1 || o.batch.empty() ||
      !(o.peak_tbps > 0)) {
    std::fprintf(stderr, "need 0 <= --rank < --tp, --steps >= 1, a --batch and --peak-tbps > 0\n");
    return 2;
  }
  shardwise::set_log_level("warn");
  return shardwise::run(o);
}
