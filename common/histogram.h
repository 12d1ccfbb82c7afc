// A histogram over fixed upper bounds, the buckets Prometheus exposes: the shard fills its
// engine's (queue and prefill time) and ships them in heartbeats; the coordinator fills its own
// and renders both (coordinator/metrics.h). Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace shardwise {

// Upper bounds in seconds for request latencies: 1 ms to 60 s.
const std::vector<double>& latency_bounds_seconds();

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds = latency_bounds_seconds());
  void observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }  // ascending
  // [bounds().size() + 1] observations per bucket (not cumulative): the last is above every
  // bound (+Inf).
  const std::vector<uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace shardwise
