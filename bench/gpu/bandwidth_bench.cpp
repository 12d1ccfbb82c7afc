// The card's memory bandwidth, the ceiling of every memory-bound roofline in docs/performance.md:
// a device-to-device cudaMemcpyAsync of --gib GiB (bytes read + bytes written over the time, as
// the H100 figure of 3.0 TB/s was measured), median of --repeats after --warmup, CUDA events.
// The last line is the figure alone, for scripts: `peak_tbps 4.31`.
//
//   bin/bandwidth_bench [--gib 4] [--repeats 20]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/fill_random.h"

int main(int argc, char** argv) {
  using namespace shardwise;
  double gib = 4.0;
  int warmup = 3;
  int repeats = 20;
  CLI::App app{"bandwidth_bench: device-to-device copy bandwidth (read + write bytes / time)"};
  app.add_option("--gib", gib, "GiB copied per run (source and destination each)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed copies first")->capture_default_str();
  app.add_option("--repeats", repeats, "Timed copies (median reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (cuda::device_count() == 0) {
    std::fprintf(stderr, "bandwidth_bench: no CUDA device\n");
    return 77;
  }
  const auto bytes = static_cast<std::size_t>(gib * (1 << 30)) / 16 * 16;
  __nv_bfloat16* src = nullptr;
  __nv_bfloat16* dst = nullptr;
  CUDA_CHECK(cudaMalloc(&src, bytes));
  CUDA_CHECK(cudaMalloc(&dst, bytes));
  // Random data, never zeros: some paths run faster on zeros than on real data.
  const auto rows = static_cast<int64_t>(bytes / sizeof(__nv_bfloat16) / 1024);
  cuda::launch_fill_uniform(src, rows, 1024, 1024, 0, 0, 1.0f, 7, nullptr);
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < warmup; ++i)
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, nullptr));
  std::vector<float> ms(repeats);
  for (float& t : ms) {
    CUDA_CHECK(cudaEventRecord(start, nullptr));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, nullptr));
    CUDA_CHECK(cudaEventRecord(stop, nullptr));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
  }
  std::sort(ms.begin(), ms.end());
  const double median_ms = ms[ms.size() / 2];
  const double tbps = 2.0 * bytes / (median_ms * 1e-3) / 1e12;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, %.1f GiB\n", prop.name, prop.multiProcessorCount,
              prop.totalGlobalMem / double(1 << 30));
  std::printf(
      "copy %.2f GiB device to device: median %.3f ms of %d (min %.3f, max %.3f): %.2f TB/s "
      "read + write\n",
      bytes / double(1 << 30), median_ms, repeats, ms.front(), ms.back(), tbps);
  std::printf("peak_tbps %.2f\n", tbps);
  CUDA_CHECK(cudaFree(src));
  CUDA_CHECK(cudaFree(dst));
  return 0;
}
