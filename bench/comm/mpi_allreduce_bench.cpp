// All-reduce latency of the CPU path's MpiCommunicator for decode-sized messages
// (batch x hidden floats), as nccl-tests reports it: median time per call after warm-up,
// algorithm bandwidth (bytes / time) and bus bandwidth (x 2(n-1)/n for all-reduce).
// Usage: mpirun -np N mpi_allreduce_bench [--iterations 500]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"

int main(int argc, char** argv) {
  using namespace shardwise;
  int iterations = 500;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = std::max(1, std::atoi(argv[i + 1]));
  }
  auto session = MpiSession::start(&argc, &argv, MpiSession::kWholeWorld);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
    return 2;
  }
  MpiCommunicator comm((*session)->tp_group(), std::chrono::seconds(60));
  const int n = comm.size();
  if (comm.rank() == 0) {
    std::printf(
        "# MPI all-reduce (sum, fp32, in place), %d ranks, %d timed iterations after %d "
        "warm-up; median per call\n",
        n, iterations, iterations / 10);
    std::printf("%8s %8s %12s %12s %12s %12s\n", "batch", "hidden", "bytes", "median_us",
                "algbw_GB/s", "busbw_GB/s");
  }
  for (int hidden : {4096, 8192}) {
    for (int batch : {1, 8, 64, 256}) {
      const std::size_t count = static_cast<std::size_t>(batch) * hidden;
      std::vector<float> data(count, 1.0f);
      std::vector<double> times;
      for (int i = 0; i < iterations + iterations / 10; ++i) {
        comm.barrier();
        const auto start = std::chrono::steady_clock::now();
        comm.all_reduce_sum(data.data(), count);
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                .count();
        if (i >= iterations / 10) times.push_back(us);
        std::fill(data.begin(), data.end(), 1.0f);
      }
      std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
      // Every rank's median goes to rank 0, which reports the slowest (the step waits for it).
      double median = times[times.size() / 2];
      float slowest = static_cast<float>(median);
      std::vector<float> medians(n);
      std::vector<std::size_t> counts(n, 1);
      comm.all_gather(&slowest, counts, medians.data());
      median = *std::max_element(medians.begin(), medians.end());
      const double bytes = count * sizeof(float);
      const double algbw = bytes / (median * 1e-6) / 1e9;
      if (comm.rank() == 0) {
        std::printf("%8d %8d %12.0f %12.1f %12.2f %12.2f\n", batch, hidden, bytes, median, algbw,
                    algbw * 2.0 * (n - 1) / n);
      }
    }
  }
  return 0;
}
