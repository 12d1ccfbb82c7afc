#include "coordinator/metrics.h"

#include <fmt/format.h>

namespace shardwise {
namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,      2.5,   5,    10,    30,   60};

std::string model_label(const std::string& model) {
  return "model=\"" + escape_label(model) + "\"";
}

void help(std::string& out, const char* name, const char* type, const char* text) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, text, name, type);
}

}  // namespace

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? fmt::format("{}", bounds_[i]) : "+Inf";
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, le, cumulative);
  }
  out +=
      fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, sum_, name, labels, count_);
}

Metrics::Metrics() = default;

Histogram& Metrics::histogram(std::map<std::string, Histogram>& family, const std::string& model) {
  return family.try_emplace(model, kLatencyBounds).first->second;
}

void Metrics::count_request(const std::string& model, const std::string& code) {
  std::lock_guard lock(mutex_);
  ++requests_[{model, code}];
}

void Metrics::observe_ttft(const std::string& model, double seconds) {
  std::lock_guard lock(mutex_);
  histogram(ttft_, model).observe(seconds);
}

void Metrics::observe_inter_token(const std::string& model, double seconds) {
  std::lock_guard lock(mutex_);
  histogram(inter_token_, model).observe(seconds);
}

void Metrics::observe_e2e(const std::string& model, double seconds) {
  std::lock_guard lock(mutex_);
  histogram(e2e_, model).observe(seconds);
}

void Metrics::add_generated_tokens(const std::string& model, int n) {
  std::lock_guard lock(mutex_);
  generated_tokens_[model] += n;
}

void Metrics::add_running(int delta) {
  std::lock_guard lock(mutex_);
  running_ += delta;
}

std::string Metrics::render(const Registry& registry) const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    help(out, "shardwise_requests_total", "counter", "Finished requests by model and status.");
    for (const auto& [key, n] : requests_) {
      out += fmt::format("shardwise_requests_total{{{},code=\"{}\"}} {}\n", model_label(key.first),
                         escape_label(key.second), n);
    }
    help(out, "shardwise_generated_tokens_total", "counter", "Tokens streamed to clients.");
    for (const auto& [model, n] : generated_tokens_) {
      out += fmt::format("shardwise_generated_tokens_total{{{}}} {}\n", model_label(model), n);
    }
    const std::pair<const char*, const std::map<std::string, Histogram>*> families[] = {
        {"shardwise_time_to_first_token_seconds", &ttft_},
        {"shardwise_inter_token_latency_seconds", &inter_token_},
        {"shardwise_request_duration_seconds", &e2e_}};
    for (const auto& [name, family] : families) {
      help(out, name, "histogram", "Latency seen by the coordinator.");
      for (const auto& [model, h] : *family) h.render(out, name, model_label(model));
    }
    help(out, "shardwise_running_requests", "gauge", "Requests being streamed now.");
    out += fmt::format("shardwise_running_requests {}\n", running_);
  }
  help(out, "shardwise_replica_live", "gauge", "1 when the replica is in rotation.");
  std::string outstanding, waiting, kv;
  std::map<std::string, int> queue_depth;  // model -> requests waiting in its live replicas
  for (const std::string& model : registry.models()) queue_depth[model] = 0;
  for (const auto& r : registry.replicas()) {
    if (r->live) queue_depth[r->card.name()] += r->waiting;
    const std::string labels =
        fmt::format("{},replica=\"{}\",address=\"{}\",device=\"{}\"", model_label(r->card.name()),
                    escape_label(r->id), escape_label(r->card.address()),
                    escape_label(device_name(r->card.device())));
    out += fmt::format("shardwise_replica_live{{{}}} {}\n", labels, r->live ? 1 : 0);
    outstanding += fmt::format("shardwise_replica_outstanding_requests{{{}}} {}\n", labels,
                               r->outstanding.load());
    waiting +=
        fmt::format("shardwise_replica_waiting_requests{{{}}} {}\n", labels, r->waiting.load());
    kv += fmt::format("shardwise_replica_kv_cache_usage{{{}}} {}\n", labels,
                      r->kv_cache_usage.load());
  }
  help(out, "shardwise_replica_outstanding_requests", "gauge",
       "Requests routed to the replica and not finished (queued and running).");
  out += outstanding;
  help(out, "shardwise_replica_waiting_requests", "gauge",
       "Requests queued in the replica's engine, not yet scheduled (last heartbeat).");
  out += waiting;
  help(out, "shardwise_queue_depth", "gauge",
       "Requests queued, not yet scheduled, over the live replicas of the model.");
  for (const auto& [model, n] : queue_depth) {
    out += fmt::format("shardwise_queue_depth{{{}}} {}\n", model_label(model), n);
  }
  help(out, "shardwise_replica_kv_cache_usage", "gauge", "Fraction of KV blocks in use.");
  out += kv;
  return out;
}

}  // namespace shardwise
