#include "coordinator/metrics.h"

#include <fmt/format.h>

#include <cmath>

#include "coordinator/process_metrics.h"

namespace shardwise {
namespace {

std::string model_label(const std::string& model) {
  return "model=\"" + escape_label(model) + "\"";
}

void help(std::string& out, const char* name, const char* type, const char* text) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, text, name, type);
}

// A replica's shipped histogram is rendered only when it makes sense: a stranger's heartbeat
// must not break the scrape.
bool well_formed(const v1::LatencyHistogram& h) {
  if (h.bounds_size() == 0 || h.bounds_size() > 64 || h.counts_size() != h.bounds_size() + 1 ||
      !std::isfinite(h.sum())) {
    return false;
  }
  for (int i = 0; i < h.bounds_size(); ++i) {
    if (!std::isfinite(h.bounds(i)) || (i > 0 && h.bounds(i) <= h.bounds(i - 1))) return false;
  }
  return true;
}

std::string replica_labels(const Replica& r) {
  return fmt::format("{},replica=\"{}\",address=\"{}\",device=\"{}\"", model_label(r.card.name()),
                     escape_label(r.id), escape_label(r.card.address()),
                     escape_label(device_name(r.card.device())));
}

// One family's lines, gathered over the replicas before its HELP is written.
struct Family {
  const char* name;
  const char* type;
  const char* help;
  std::string lines = {};
};

void render_replicas(std::string& out, const Registry& registry) {
  Family live{"shardwise_replica_live", "gauge", "1 when the replica is in rotation."};
  Family outstanding{"shardwise_replica_outstanding_requests", "gauge",
                     "Requests routed to the replica and not finished (queued and running)."};
  Family running{"shardwise_replica_running_requests", "gauge",
                 "Requests the replica's engine has scheduled (last heartbeat)."};
  Family waiting{"shardwise_replica_waiting_requests", "gauge",
                 "Requests queued in the replica's engine, not yet scheduled (last heartbeat)."};
  Family kv{"shardwise_replica_kv_cache_usage_ratio", "gauge",
            "Fraction of the replica's KV cache blocks in use, 0 to 1 (last heartbeat)."};
  Family preemptions{"shardwise_replica_preemptions_total", "counter",
                     "Sequences the replica's engine preempted (KV blocks freed, recomputed)."};
  Family queried{"shardwise_replica_prefix_cache_queried_tokens_total", "counter",
                 "Prompt tokens (in full KV blocks) looked up in the replica's prefix cache."};
  Family hits{"shardwise_replica_prefix_cache_hit_tokens_total", "counter",
              "Of the queried prompt tokens, those found in the prefix cache and reused."};
  Family queue{"shardwise_replica_queue_time_seconds", "histogram",
               "Time requests waited in the replica's engine before first being scheduled."};
  Family prefill{"shardwise_replica_prefill_time_seconds", "histogram",
                 "Time from first being scheduled to the first token, in the replica's engine."};
  std::map<std::string, int> queue_depth;  // model -> requests waiting in its live replicas
  for (const std::string& model : registry.models()) queue_depth[model] = 0;
  for (const auto& r : registry.replicas()) {
    if (r->live) queue_depth[r->card.name()] += r->waiting;
    const std::string labels = replica_labels(*r);
    live.lines += fmt::format("shardwise_replica_live{{{}}} {}\n", labels, r->live ? 1 : 0);
    outstanding.lines += fmt::format("shardwise_replica_outstanding_requests{{{}}} {}\n", labels,
                                     r->outstanding.load());
    running.lines += fmt::format("shardwise_replica_running_requests{{{}}} {}\n", labels,
                                 std::max(0, r->running.load() - r->waiting.load()));
    waiting.lines +=
        fmt::format("shardwise_replica_waiting_requests{{{}}} {}\n", labels, r->waiting.load());
    kv.lines += fmt::format("shardwise_replica_kv_cache_usage_ratio{{{}}} {}\n", labels,
                            r->kv_cache_usage.load());
    const v1::EngineMetrics engine = r->engine_metrics();
    preemptions.lines +=
        fmt::format("shardwise_replica_preemptions_total{{{}}} {}\n", labels, engine.preemptions());
    queried.lines += fmt::format("shardwise_replica_prefix_cache_queried_tokens_total{{{}}} {}\n",
                                 labels, engine.prefix_cache_queried_tokens());
    hits.lines += fmt::format("shardwise_replica_prefix_cache_hit_tokens_total{{{}}} {}\n", labels,
                              engine.prefix_cache_hit_tokens());
    for (auto [family, h] :
         {std::pair(&queue, &engine.queue_time()), std::pair(&prefill, &engine.prefill_time())}) {
      if (!well_formed(*h)) continue;
      render_histogram(family->lines, family->name, labels,
                       {h->bounds().begin(), h->bounds().end()},
                       {h->counts().begin(), h->counts().end()}, h->sum());
    }
  }
  for (const Family* family : {&live, &outstanding, &running, &waiting, &kv, &preemptions, &queried,
                               &hits, &queue, &prefill}) {
    help(out, family->name, family->type, family->help);
    out += family->lines;
  }
  help(out, "shardwise_queue_depth", "gauge",
       "Requests queued, not yet scheduled, over the live replicas of the model.");
  for (const auto& [model, n] : queue_depth) {
    out += fmt::format("shardwise_queue_depth{{{}}} {}\n", model_label(model), n);
  }
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

void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                      double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size() && i < counts.size(); ++i) {
    cumulative += counts[i];
    const std::string le = i < bounds.size() ? fmt::format("{}", bounds[i]) : "+Inf";
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, le, cumulative);
  }
  out += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, sum, name, labels,
                     cumulative);
}

Metrics::Metrics() = default;

Histogram& Metrics::histogram(std::map<std::string, Histogram>& family, const std::string& model) {
  return family.try_emplace(model).first->second;
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

void Metrics::add_prompt_tokens(const std::string& model, int n) {
  std::lock_guard lock(mutex_);
  prompt_tokens_[model] += n;
}

void Metrics::add_generated_tokens(const std::string& model, int n) {
  std::lock_guard lock(mutex_);
  generated_tokens_[model] += n;
}

void Metrics::add_running(int delta) {
  std::lock_guard lock(mutex_);
  running_ += delta;
}

void Metrics::render_requests(std::string& out) const {
  help(out, "shardwise_requests_total", "counter", "Finished requests by model and status.");
  for (const auto& [key, n] : requests_) {
    out += fmt::format("shardwise_requests_total{{{},code=\"{}\"}} {}\n", model_label(key.first),
                       escape_label(key.second), n);
  }
  struct Counters {
    const char* name;
    const char* help;
    const std::map<std::string, uint64_t>* by_model;
  };
  for (const Counters& family :
       {Counters{"shardwise_prompt_tokens_total", "Prompt tokens prefilled by the replicas.",
                 &prompt_tokens_},
        Counters{"shardwise_generation_tokens_total", "Generated tokens streamed to clients.",
                 &generated_tokens_}}) {
    help(out, family.name, "counter", family.help);
    for (const auto& [model, n] : *family.by_model) {
      out += fmt::format("{}{{{}}} {}\n", family.name, model_label(model), n);
    }
  }
  struct Histograms {
    const char* name;
    const char* help;
    const std::map<std::string, Histogram>* by_model;
  };
  for (const Histograms& family :
       {Histograms{"shardwise_time_to_first_token_seconds",
                   "Time from a request's arrival to its first token, at the coordinator.", &ttft_},
        Histograms{"shardwise_inter_token_latency_seconds",
                   "Time between a request's successive tokens, at the coordinator.",
                   &inter_token_},
        Histograms{"shardwise_request_duration_seconds",
                   "Time from a request's arrival to its last token (successful requests).",
                   &e2e_}}) {
    help(out, family.name, "histogram", family.help);
    for (const auto& [model, h] : *family.by_model) {
      render_histogram(out, family.name, model_label(model), h.bounds(), h.counts(), h.sum());
    }
  }
  help(out, "shardwise_running_requests", "gauge", "Requests being streamed now.");
  out += fmt::format("shardwise_running_requests {}\n", running_);
}

std::string Metrics::render(const Registry& registry) const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    render_requests(out);
  }
  render_replicas(out, registry);
  render_process_metrics(out);
  return out;
}

}  // namespace shardwise
