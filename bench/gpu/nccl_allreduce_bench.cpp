// Latency of the device all-reduce (DeviceCommunicator::all_reduce_sum, in place, bf16) for
// decode-sized messages: batch x hidden x 2 bytes for batch 1, 8, 64, 256 and hidden 4096, 8192.
// Each size: --warmup untimed calls, then the median of --iterations calls, each timed by CUDA
// events around the one call after a host barrier; the slowest rank's median is reported (a
// decode step waits for it). Metrics as nccl-tests defines them: algbw = bytes / time,
// busbw = algbw x 2(n-1)/n. For NCCL, graph_us is the time per all-reduce when --graph-calls of
// them are captured in one CUDA graph and the graph replayed (what a graph-captured decode step
// pays); host-staged collectives cannot be captured.
//
//   mpirun -np 1 bin/nccl_allreduce_bench                      # NCCL at TP=1 (one GPU)
//   mpirun -np 2 bin/nccl_allreduce_bench                      # ranks share the GPU: host-staged
//   mpirun -np 2 bin/nccl_allreduce_bench --backend nccl       # a GPU per rank only
// Exits 77 without a GPU.
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "comm/device_communicator_factory.h"
#include "comm/host_staged_communicator.h"
#include "comm/nccl_communicator.h"
#include "common/check.h"

namespace shardwise {
namespace {

struct BenchOptions {
  std::string backend = "auto";  // auto (factory; NCCL for one rank), nccl or host-staged
  int warmup = 20;
  int iterations = 200;
  int graph_calls = 100;  // all-reduces per captured graph
  int graph_replays = 20;
  int timeout_s = 60;
};

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// The slowest rank's value.
double slowest(double value, MPI_Comm group) {
  double result = value;
  MPI_CHECK(MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_MAX, group));
  return result;
}

double eager_median_us(DeviceCommunicator& comm, void* data, std::size_t count,
                       const BenchOptions& options, cudaStream_t stream, MPI_Comm group) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int i = 0; i < options.warmup + options.iterations; ++i) {
    MPI_CHECK(MPI_Barrier(group));
    CUDA_CHECK(cudaEventRecord(start, stream));
    comm.all_reduce_sum(data, count, DType::kBF16, stream);
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (i >= options.warmup) times.push_back(ms * 1e3);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return slowest(median(times), group);
}

double graph_median_us(NcclCommunicator& comm, void* data, std::size_t count,
                       const BenchOptions& options, cudaStream_t stream, MPI_Comm group) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < options.graph_calls; ++i)
    comm.all_reduce_sum(data, count, DType::kBF16, stream);
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int i = 0; i < 2 + options.graph_replays; ++i) {
    MPI_CHECK(MPI_Barrier(group));
    CUDA_CHECK(cudaEventRecord(start, stream));
    CUDA_CHECK(cudaGraphLaunch(exec, stream));
    CUDA_CHECK(cudaEventRecord(stop, stream));
    comm.watch(stream, "graph of all-reduces");
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (i >= 2) times.push_back(ms * 1e3 / options.graph_calls);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
  return slowest(median(times), group);
}

StatusOr<std::unique_ptr<DeviceCommunicator>> make_comm(const MpiSession& session,
                                                        const BenchOptions& options) {
  const auto timeout = std::chrono::seconds(options.timeout_s);
  const int size = session.config().world_size;
  if (options.backend == "auto" && size > 1) return make_device_communicator(session, timeout);
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  CUDA_CHECK(cudaSetDevice(session.config().local_rank % devices));
  if (options.backend == "host-staged") {
    return std::unique_ptr<DeviceCommunicator>(
        new HostStagedCommunicator(session.tp_group(), timeout));
  }
  return std::unique_ptr<DeviceCommunicator>(new NcclCommunicator(session.tp_group(), timeout));
}

int run(const MpiSession& session, const BenchOptions& options) {
  auto made = make_comm(session, options);
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", made.status().to_string().c_str());
    return 2;
  }
  DeviceCommunicator& comm = **made;
  auto* nccl = dynamic_cast<NcclCommunicator*>(&comm);
  const MPI_Comm group = session.tp_group();
  const int n = comm.size();
  const char* name = nccl != nullptr                                           ? "NCCL"
                     : dynamic_cast<HostStagedCommunicator*>(&comm) != nullptr ? "host-staged"
                                                                               : "solo";
  if (comm.rank() == 0) {
    std::printf(
        "# device all-reduce (sum, bf16, in place), %s, %d rank(s); median of %d calls after %d "
        "warm-up, slowest rank; graph_us: per call, %d calls per CUDA graph\n",
        name, n, options.iterations, options.warmup, options.graph_calls);
    std::printf("%6s %6s %10s %10s %11s %11s %10s\n", "batch", "hidden", "bytes", "median_us",
                "algbw_GB/s", "busbw_GB/s", "graph_us");
  }
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (int hidden : {4096, 8192}) {
    for (int batch : {1, 8, 64, 256}) {
      const std::size_t count = static_cast<std::size_t>(batch) * hidden;
      const double bytes = 2.0 * count;
      void* data = nullptr;
      CUDA_CHECK(cudaMalloc(&data, count * 2));
      CUDA_CHECK(cudaMemset(data, 0, count * 2));  // sums of zeros stay finite
      const double us = eager_median_us(comm, data, count, options, stream, group);
      const double graph_us =
          nccl != nullptr ? graph_median_us(*nccl, data, count, options, stream, group) : -1.0;
      const double algbw = bytes / (us * 1e-6) / 1e9;
      if (comm.rank() == 0) {
        std::printf("%6d %6d %10.0f %10.2f %11.2f %11.2f ", batch, hidden, bytes, us, algbw,
                    algbw * 2.0 * (n - 1) / n);
        if (graph_us >= 0) {
          std::printf("%10.2f\n", graph_us);
        } else {
          std::printf("%10s\n", "-");
        }
        std::fflush(stdout);
      }
      CUDA_CHECK(cudaFree(data));
    }
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  using namespace shardwise;
  BenchOptions options;
  CLI::App app("Device all-reduce latency for decode-sized bf16 messages (run under mpirun)");
  app.add_option("--backend", options.backend, "auto, nccl or host-staged")
      ->check(CLI::IsMember({"auto", "nccl", "host-staged"}));
  app.add_option("--warmup", options.warmup, "untimed calls per size")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--iterations", options.iterations, "timed calls per size (median)")
      ->check(CLI::Range(100, 1000000));
  app.add_option("--graph-calls", options.graph_calls, "all-reduces per CUDA graph (NCCL)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout", options.timeout_s, "collective timeout, seconds")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  auto session = MpiSession::start(&argc, &argv, MpiSession::kWholeWorld);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
    return 2;
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device\n");
    return 77;
  }
  return run(**session, options);
}
