// bf16 linear-layer throughput on the Llama-3-8B shapes: prefill GEMMs (m = 2048) in TFLOP/s,
// a square 8192^3 GEMM (the "measured bf16 GEMM rate"), and decode (m = 1, 8, 64) in TB/s of
// weight bytes read, for Gemm::linear (our GEMV at m <= 8, cuBLASLt above) and for cuBLAS alone
// (cublasGemmEx, default algorithm). CUDA-event timing of each call, median of --reps runs
// after --warmup; weights are rotated over enough copies (>= 4x the L2 cache) that every timed
// call reads them from HBM. Exits 77 without a GPU.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/fill_random.h"
#include "kernels/cuda/gemm.h"

namespace shardwise {
namespace {

struct Layer {
  const char* name;
  int n, k;  // out_features, in_features
};

// Llama-3-8B, TP = 1.
const Layer kLayers[] = {{"qkv", 6144, 4096},
                         {"o", 4096, 4096},
                         {"gate_up", 28672, 4096},
                         {"down", 4096, 14336},
                         {"lm_head", 128256, 4096}};

// Median time in microseconds of `reps` timed calls of run(i) after `warmup` untimed ones.
double median_us(const std::function<void(int)>& run, int warmup, int reps) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < warmup; ++i) run(i);
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    CUDA_CHECK(cudaEventRecord(start));
    run(warmup + i);
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms * 1e3);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

// Copies of one [n, k] bf16 weight, as many as keep their total above 4x the L2 cache.
class RotatingWeights {
 public:
  RotatingWeights(int n, int k, std::size_t l2_bytes) {
    const std::size_t bytes = static_cast<std::size_t>(n) * k * sizeof(__nv_bfloat16);
    const std::size_t copies = std::max<std::size_t>(1, (4 * l2_bytes + bytes - 1) / bytes);
    for (std::size_t c = 0; c < copies; ++c) {
      __nv_bfloat16* w = nullptr;
      CUDA_CHECK(cudaMalloc(&w, bytes));
      cuda::launch_fill_uniform(w, n, k, k, 0, 0, 0.02f, 1 + c, nullptr);
      copies_.push_back(w);
    }
  }
  ~RotatingWeights() {
    for (auto* w : copies_) cudaFree(w);
  }
  const __nv_bfloat16* get(int i) const { return copies_[i % copies_.size()]; }

 private:
  std::vector<__nv_bfloat16*> copies_;
};

struct Buffers {
  __nv_bfloat16* in = nullptr;
  __nv_bfloat16* out = nullptr;
  Buffers(int m, int n, int k) {
    CUDA_CHECK(cudaMalloc(&in, static_cast<std::size_t>(m) * k * sizeof(__nv_bfloat16)));
    CUDA_CHECK(cudaMalloc(&out, static_cast<std::size_t>(m) * n * sizeof(__nv_bfloat16)));
    cuda::launch_fill_uniform(in, m, k, k, 0, 0, 1.0f, 7, nullptr);
  }
  ~Buffers() {
    cudaFree(in);
    cudaFree(out);
  }
};

// cuBLAS alone: row-major out[m, n] = in[m, k] · W[n, k]^T as column-major W^T-times-in.
void cublas_linear(cublasHandle_t handle, __nv_bfloat16* out, const __nv_bfloat16* in,
                   const __nv_bfloat16* weight, int m, int n, int k) {
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, weight, CUDA_R_16BF,
                            k, in, CUDA_R_16BF, k, &beta, out, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  using namespace shardwise;
  CLI::App app{"bf16 GEMM/GEMV throughput on the Llama-3-8B layer shapes"};
  int warmup = 10, reps = 50, prefill_m = 2048;
  app.add_option("--warmup", warmup, "untimed calls first")->check(CLI::NonNegativeNumber);
  app.add_option("--reps", reps, "timed calls (the median is reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--prefill-m", prefill_m, "tokens of the prefill GEMMs")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (cuda::device_count() == 0) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  int device = 0, l2_bytes = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  std::printf("# %s, L2 %d MiB; median of %d runs after %d warm-up\n", prop.name, l2_bytes >> 20,
              reps, warmup);

  cuda::Gemm gemm;
  cublasHandle_t cublas = nullptr;
  CUBLAS_CHECK(cublasCreate(&cublas));
  CUDA_CHECK(cudaDeviceSynchronize());

  std::printf("# prefill, bf16, m = %d: TFLOP/s = 2 m n k / time\n", prefill_m);
  std::vector<Layer> prefill(std::begin(kLayers), std::end(kLayers));
  prefill.push_back({"square", 8192, 8192});
  for (const Layer& layer : prefill) {
    const int m = std::string(layer.name) == "square" ? 8192 : prefill_m;
    RotatingWeights weights(layer.n, layer.k, l2_bytes);
    Buffers buffers(m, layer.n, layer.k);
    const double us = median_us(
        [&](int i) {
          gemm.linear(buffers.out, DType::kBF16, buffers.in, weights.get(i), DType::kBF16, m,
                      layer.n, layer.k, nullptr);
        },
        warmup, reps);
    const double tflops = 2.0 * m * layer.n * layer.k / (us * 1e-6) / 1e12;
    std::printf("prefill %-8s m=%-5d n=%-6d k=%-5d %9.1f us %7.1f TFLOP/s\n", layer.name, m,
                layer.n, layer.k, us, tflops);
  }

  std::printf("# decode, bf16: TB/s = weight bytes / time (Gemm::linear: GEMV for m <= 8)\n");
  for (const int m : {1, 8, 64}) {
    for (const Layer& layer : kLayers) {
      RotatingWeights weights(layer.n, layer.k, l2_bytes);
      Buffers buffers(m, layer.n, layer.k);
      const double weight_bytes = 2.0 * layer.n * layer.k;
      const double ours = median_us(
          [&](int i) {
            gemm.linear(buffers.out, DType::kBF16, buffers.in, weights.get(i), DType::kBF16, m,
                        layer.n, layer.k, nullptr);
          },
          warmup, reps);
      const double cublas_us = median_us(
          [&](int i) {
            cublas_linear(cublas, buffers.out, buffers.in, weights.get(i), m, layer.n, layer.k);
          },
          warmup, reps);
      std::printf(
          "decode  %-8s m=%-3d n=%-6d k=%-5d Gemm::linear %8.1f us %5.2f TB/s | cuBLAS %8.1f us "
          "%5.2f TB/s\n",
          layer.name, m, layer.n, layer.k, ours, weight_bytes / (ours * 1e-6) / 1e12, cublas_us,
          weight_bytes / (cublas_us * 1e-6) / 1e12);
    }
  }
  CUBLAS_CHECK(cublasDestroy(cublas));
  return 0;
}
