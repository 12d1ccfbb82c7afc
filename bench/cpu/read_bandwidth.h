// The roofline of the CPU decode benchmarks: how fast all OpenMP threads together read memory
// (a large array summed, each thread its own contiguous share, as the matmul reads weights).
#pragma once

#include <cstddef>

namespace shardwise::bench {

struct ReadBandwidth {
  double best_gbps;    // the fastest of the timed passes
  double median_gbps;  // their median
};

// Sums `bytes` of memory `passes` times after one untimed pass (which also faults the pages in).
ReadBandwidth measure_read_bandwidth(std::size_t bytes = std::size_t{1} << 30, int passes = 7);

}  // namespace shardwise::bench
