// The coordinator's Prometheus metrics, rendered in the text exposition format (version 0.0.4).
// Counters and histograms are updated lock-free-enough under one mutex; gauges about replicas
// are read from the registry when /metrics is scraped.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/registry.h"

namespace shardwise {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // "name_bucket{le="0.005"} 3" lines, then _sum and _count; `labels` is e.g. model="m".
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // [bounds_.size() + 1]: the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  // One finished request: its model and gRPC status code name (e.g. "OK", "INVALID_ARGUMENT").
  void count_request(const std::string& model, const std::string& code);
  void observe_ttft(const std::string& model, double seconds);
  void observe_inter_token(const std::string& model, double seconds);
  void observe_e2e(const std::string& model, double seconds);
  void add_generated_tokens(const std::string& model, int n);
  void add_running(int delta);

  std::string render(const Registry& registry) const;

 private:
  Histogram& histogram(std::map<std::string, Histogram>& family, const std::string& model);

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (model, code)
  std::map<std::string, uint64_t> generated_tokens_;
  std::map<std::string, Histogram> ttft_, inter_token_, e2e_;
  int64_t running_ = 0;
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string escape_label(const std::string& value);

}  // namespace shardwise
