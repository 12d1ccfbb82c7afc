// Attention kernels on the GPU, bf16: paged decode attention (achieved bandwidth = K/V bytes
// read / time, against a peak of --peak-tbps) and causal prefill attention (TFLOP/s). Every
// configuration: --warmup untimed runs, then the median of --repeats runs timed by CUDA events.
// Keys and values are random (hashed) and sit in randomly permuted cache blocks.
//
//   bin/paged_attention_bench                                   # the shapes
//   bin/paged_attention_bench --decode 64x4096,1x32768 --prefill 1x2048 --heads 32 --kv-heads 8
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/fill_random.h"
#include "kernels/cuda/paged_attention_decode.h"
#include "kernels/cuda/prefill_attention.h"

namespace shardwise {
namespace {

using T = __nv_bfloat16;

struct BenchOptions {
  std::vector<std::string> decode{"64x4096", "1x32768"};  // BATCHxCONTEXT
  std::vector<std::string> prefill{"1x2048"};             // SEQUENCESxTOKENS (whole prompts)
  int heads = 32;
  int kv_heads = 8;
  int head_dim = 128;
  int block_size = 16;
  int warmup = 5;
  int repeats = 20;
  double peak_tbps = 3.0;
};

struct Shape {
  int batch = 0;
  int length = 0;
};

Shape parse_shape(const std::string& text) {
  const auto x = text.find('x');
  SW_CHECK(x != std::string::npos);
  return {std::stoi(text.substr(0, x)), std::stoi(text.substr(x + 1))};
}

template <typename U>
U* device_alloc(std::size_t count) {
  U* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, count * sizeof(U)));
  return p;
}

// A bf16 paged cache for `batch` sequences of `context` tokens, blocks randomly permuted.
struct Cache {
  T* k = nullptr;
  T* v = nullptr;
  int32_t* block_tables = nullptr;  // [batch, max_blocks_per_seq]
  int max_blocks_per_seq = 0;

  Cache(const BenchOptions& o, int batch, int context) {
    max_blocks_per_seq = (context + o.block_size - 1) / o.block_size;
    const int num_blocks = batch * max_blocks_per_seq;
    const int64_t rows = static_cast<int64_t>(num_blocks) * o.block_size * o.kv_heads;
    k = device_alloc<T>(static_cast<std::size_t>(rows) * o.head_dim);
    v = device_alloc<T>(static_cast<std::size_t>(rows) * o.head_dim);
    cuda::launch_fill_uniform(k, rows, o.head_dim, o.head_dim, 0, 0, 1.0f, 1, nullptr);
    cuda::launch_fill_uniform(v, rows, o.head_dim, o.head_dim, 0, 0, 1.0f, 2, nullptr);
    std::vector<int32_t> tables(num_blocks);
    std::iota(tables.begin(), tables.end(), 0);
    std::shuffle(tables.begin(), tables.end(), std::mt19937(7));
    block_tables = device_alloc<int32_t>(tables.size());
    CUDA_CHECK(cudaMemcpy(block_tables, tables.data(), tables.size() * sizeof(int32_t),
                          cudaMemcpyHostToDevice));
  }
  ~Cache() {
    cudaFree(k);
    cudaFree(v);
    cudaFree(block_tables);
  }
};

// Median milliseconds of `repeats` runs of `run` after `warmup` untimed ones.
template <typename Run>
double median_ms(const BenchOptions& o, Run run) {
  for (int i = 0; i < o.warmup; ++i) run();
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> times(o.repeats);
  for (auto& ms : times) {
    CUDA_CHECK(cudaEventRecord(start));
    run();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void bench_decode(const BenchOptions& o, Shape shape) {
  const int batch = shape.batch, context = shape.length;
  Cache cache(o, batch, context);
  const int q_width = o.heads * o.head_dim;
  T* q = device_alloc<T>(static_cast<std::size_t>(batch) * q_width);
  T* out = device_alloc<T>(static_cast<std::size_t>(batch) * q_width);
  cuda::launch_fill_uniform(q, batch, q_width, q_width, 0, 0, 1.0f, 3, nullptr);
  std::vector<int32_t> contexts(batch, context);
  int32_t* context_lens = device_alloc<int32_t>(batch);
  CUDA_CHECK(
      cudaMemcpy(context_lens, contexts.data(), batch * sizeof(int32_t), cudaMemcpyHostToDevice));
  const std::size_t workspace_bytes =
      cuda::paged_attention_decode_workspace_bytes(batch, o.heads, o.head_dim, context);
  void* workspace = workspace_bytes > 0 ? device_alloc<char>(workspace_bytes) : nullptr;
  const float scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));

  const double ms = median_ms(o, [&] {
    cuda::launch_paged_attention_decode<T>(out, q, cache.k, cache.v, cache.block_tables,
                                           context_lens, batch, o.heads, o.kv_heads, o.head_dim,
                                           q_width, o.block_size, cache.max_blocks_per_seq, context,
                                           scale, workspace, nullptr);
  });
  const double kv_bytes =
      2.0 * batch * static_cast<double>(context) * o.kv_heads * o.head_dim * sizeof(T);
  const double tbps = kv_bytes / (ms * 1e-3) / 1e12;
  std::printf(
      "decode   batch=%-4d context=%-6d heads=%d/%d head_dim=%d block=%d bf16: median %.4f ms, "
      "K/V %.1f MB, %.3f TB/s = %.1f%% of %.1f TB/s\n",
      batch, context, o.heads, o.kv_heads, o.head_dim, o.block_size, ms, kv_bytes / 1e6, tbps,
      100.0 * tbps / o.peak_tbps, o.peak_tbps);
  cudaFree(q);
  cudaFree(out);
  cudaFree(context_lens);
  cudaFree(workspace);
}

void bench_prefill(const BenchOptions& o, Shape shape) {
  const int n_seqs = shape.batch, tokens = shape.length;
  Cache cache(o, n_seqs, tokens);
  const int n_tokens = n_seqs * tokens;
  const int q_width = o.heads * o.head_dim;
  T* q = device_alloc<T>(static_cast<std::size_t>(n_tokens) * q_width);
  T* out = device_alloc<T>(static_cast<std::size_t>(n_tokens) * q_width);
  cuda::launch_fill_uniform(q, n_tokens, q_width, q_width, 0, 0, 1.0f, 4, nullptr);
  std::vector<int32_t> starts(n_seqs + 1), contexts(n_seqs, tokens);
  for (int s = 0; s <= n_seqs; ++s) starts[s] = s * tokens;
  int32_t* query_starts = device_alloc<int32_t>(starts.size());
  int32_t* context_lens = device_alloc<int32_t>(n_seqs);
  CUDA_CHECK(cudaMemcpy(query_starts, starts.data(), starts.size() * sizeof(int32_t),
                        cudaMemcpyHostToDevice));
  CUDA_CHECK(
      cudaMemcpy(context_lens, contexts.data(), n_seqs * sizeof(int32_t), cudaMemcpyHostToDevice));
  const float scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));

  const double ms = median_ms(o, [&] {
    cuda::launch_prefill_attention<T>(out, q, cache.k, cache.v, cache.block_tables, query_starts,
                                      context_lens, n_seqs, tokens, o.heads, o.kv_heads, o.head_dim,
                                      q_width, o.block_size, cache.max_blocks_per_seq, scale,
                                      nullptr);
  });
  // Causal: query i sees i + 1 keys; QK^T and PV are 2 FLOPs per (key, dim) each.
  const double pairs = n_seqs * (static_cast<double>(tokens) * (tokens + 1) / 2);
  const double flops = 4.0 * pairs * o.heads * o.head_dim;
  std::printf(
      "prefill  seqs=%-4d tokens=%-6d heads=%d/%d head_dim=%d block=%d bf16: median %.4f ms, "
      "%.2f TFLOP/s (causal FLOPs only)\n",
      n_seqs, tokens, o.heads, o.kv_heads, o.head_dim, o.block_size, ms,
      flops / (ms * 1e-3) / 1e12);
  cudaFree(q);
  cudaFree(out);
  cudaFree(query_starts);
  cudaFree(context_lens);
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  using namespace shardwise;
  BenchOptions o;
  CLI::App app{"Paged decode and prefill attention on the GPU (bf16)"};
  app.add_option("--decode", o.decode, "decode shapes BATCHxCONTEXT")->delimiter(',');
  app.add_option("--prefill", o.prefill, "prefill shapes SEQUENCESxTOKENS")->delimiter(',');
  app.add_option("--heads", o.heads, "query heads");
  app.add_option("--kv-heads", o.kv_heads, "KV heads");
  app.add_option("--head-dim", o.head_dim, "head size");
  app.add_option("--block-size", o.block_size, "tokens per cache block");
  app.add_option("--warmup", o.warmup, "untimed runs");
  app.add_option("--repeats", o.repeats, "timed runs (median reported)");
  app.add_option("--peak-tbps", o.peak_tbps, "memory bandwidth to compare against (TB/s)");
  CLI11_PARSE(app, argc, argv);
  if (cuda::device_count() == 0) {
    std::fprintf(stderr, "paged_attention_bench: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  for (const auto& shape : o.decode) bench_decode(o, parse_shape(shape));
  for (const auto& shape : o.prefill) bench_prefill(o, parse_shape(shape));
  return 0;
}
