// Prints the machine's read bandwidth with all (or --threads) OpenMP threads, and the CPU:
//   bin/bandwidth_probe --threads 2
#include <CLI/CLI.hpp>
#include <cstdio>

#include "bench/cpu/read_bandwidth.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/cpu_threads.h"

int main(int argc, char** argv) {
  int threads = 0;
  int megabytes = 1024;
  CLI::App app{"Read bandwidth of all threads (a large array summed)"};
  app.add_option("--threads", threads, "OpenMP threads (0: all cores)")->capture_default_str();
  app.add_option("--megabytes", megabytes, "Array size in MiB")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  shardwise::cpu::set_cpu_threads(threads);
  const auto bandwidth = shardwise::bench::measure_read_bandwidth(std::size_t(megabytes) << 20);
  std::printf("cpu %s\n", shardwise::cpu::cpu_description().c_str());
  std::printf("read_bandwidth_gbps best %.2f median %.2f\n", bandwidth.best_gbps,
              bandwidth.median_gbps);
  return 0;
}
