#include "bench/cpu/read_bandwidth.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"

namespace shardwise::bench {
namespace {

// Eight independent sums per thread so that the adds never bound the loop.
float sum_all(const float* data, std::size_t count) {
  float total = 0;
#pragma omp parallel reduction(+ : total)
  {
    float lanes[64] = {};
#pragma omp for schedule(static)
    for (std::size_t i = 0; i < count; i += 64) {
#pragma omp simd
      for (int j = 0; j < 64; ++j) lanes[j] += data[i + j];
    }
    for (float lane : lanes) total += lane;
  }
  return total;
}

}  // namespace

ReadBandwidth measure_read_bandwidth(std::size_t bytes, int passes) {
  const std::size_t count = bytes / sizeof(float) / 64 * 64;
  cpu::AlignedBuffer buffer(count * sizeof(float));
  auto* data = reinterpret_cast<float*>(buffer.data());
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < count; ++i) data[i] = 1.0f;
  volatile float sink = sum_all(data, count);
  std::vector<double> gbps;
  for (int pass = 0; pass < passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    sink = sum_all(data, count);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    gbps.push_back(count * sizeof(float) / seconds / 1e9);
  }
  (void)sink;
  std::sort(gbps.begin(), gbps.end());
  return {gbps.back(), gbps[gbps.size() / 2]};
}

}  // namespace shardwise::bench
