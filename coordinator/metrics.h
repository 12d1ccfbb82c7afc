// The coordinator's Prometheus metrics, rendered in the text exposition format (version 0.0.4;
// every name and its meaning: docs/operations.md). Counters and histograms are updated under
// one mutex; what the replicas report (load, KV cache, queue and prefill time, preemptions,
// prefix cache) is read from the registry when /metrics is scraped, as the last heartbeat left
// it; process_* describe this process.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/histogram.h"
#include "coordinator/registry.h"

namespace shardwise {

class Metrics {
 public:
  Metrics();
  // One finished request: its model and gRPC status code name (e.g. "OK", "INVALID_ARGUMENT").
  void count_request(const std::string& model, const std::string& code);
  void observe_ttft(const std::string& model, double seconds);
  void observe_inter_token(const std::string& model, double seconds);
  void observe_e2e(const std::string& model, double seconds);
  // Prompt tokens a replica prefilled (counted when the first token came back).
  void add_prompt_tokens(const std::string& model, int n);
  void add_generated_tokens(const std::string& model, int n);
  void add_running(int delta);

  std::string render(const Registry& registry) const;

 private:
  Histogram& histogram(std::map<std::string, Histogram>& family, const std::string& model);
  void render_requests(std::string& out) const;  // with mutex_ held

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (model, code)
  std::map<std::string, uint64_t> prompt_tokens_, generated_tokens_;
  std::map<std::string, Histogram> ttft_, inter_token_, e2e_;
  int64_t running_ = 0;
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string escape_label(const std::string& value);

// "name_bucket{labels,le="0.005"} 3" lines (cumulative, as Prometheus counts them), then _sum
// and _count; `labels` is e.g. model="m". `counts` holds one entry per bucket, the last +Inf.
void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                      double sum);

}  // namespace shardwise
