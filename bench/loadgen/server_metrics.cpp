#include "bench/loadgen/server_metrics.h"

#include <algorithm>
#include <thread>

namespace shardwise::loadgen {
namespace {

const std::string* exposed_name(const Exposition& e, const CounterSpec& spec) {
  for (const std::string& name : spec.names) {
    if (sum_samples(e, name).has_value()) return &name;
  }
  return nullptr;
}

double counter_value(const Exposition& e, const std::string& name, const std::string& model) {
  return sum_samples(e, name, "model", model).value_or(0);
}

std::vector<double> tracked_values(const Exposition& e, const std::vector<CounterSpec>& counters,
                                   const std::string& model) {
  std::vector<double> values;
  for (const CounterSpec& spec : counters) {
    const std::string* name = exposed_name(e, spec);
    values.push_back(name ? counter_value(e, *name, model) : -1);
  }
  return values;
}

}  // namespace

std::vector<CounterSpec> default_counters() {
  return {{"output_tokens", {"shardwise_generation_tokens_total", "vllm:generation_tokens_total"}},
          {"input_tokens", {"shardwise_prompt_tokens_total", "vllm:prompt_tokens_total"}}};
}

StatusOr<std::vector<CounterSpec>> override_counters(std::vector<CounterSpec> counters,
                                                     const std::vector<std::string>& overrides) {
  for (const std::string& item : overrides) {
    const size_t eq = item.find('=');
    const std::string quantity = item.substr(0, eq);
    auto it = std::find_if(counters.begin(), counters.end(),
                           [&](const CounterSpec& c) { return c.quantity == quantity; });
    if (eq == std::string::npos || eq + 1 == item.size() || it == counters.end()) {
      return invalid_argument(
          "--server-counter {}: expected output_tokens=NAME or input_tokens=NAME", item);
    }
    it->names = {item.substr(eq + 1)};
  }
  return counters;
}

StatusOr<Exposition> scrape(const std::string& url, const ClientOptions& options) {
  SW_ASSIGN_OR_RETURN(std::string text, http_get(url, options.tls_ca_file, options.api_key));
  return parse_exposition(text);
}

StatusOr<Exposition> scrape_settled(const std::string& url, const ClientOptions& options,
                                    const std::vector<CounterSpec>& counters,
                                    const std::string& model) {
  SW_ASSIGN_OR_RETURN(Exposition last, scrape(url, options));
  for (int i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    SW_ASSIGN_OR_RETURN(Exposition next, scrape(url, options));
    const bool settled =
        tracked_values(next, counters, model) == tracked_values(last, counters, model);
    last = std::move(next);
    if (settled) break;
  }
  return last;
}

nlohmann::json compare_counters(const Exposition& before, const Exposition& after,
                                const std::vector<CounterSpec>& counters, const std::string& model,
                                const std::map<std::string, int64_t>& client) {
  nlohmann::json out = nlohmann::json::array();
  for (const CounterSpec& spec : counters) {
    nlohmann::json row = {{"quantity", spec.quantity}, {"metric", nullptr}};
    auto own = client.find(spec.quantity);
    if (own != client.end()) row["client"] = own->second;
    if (const std::string* name = exposed_name(after, spec)) {
      const double b = counter_value(before, *name, model);
      const double a = counter_value(after, *name, model);
      row["metric"] = *name;
      row["before"] = b;
      row["after"] = a;
      row["server"] = a - b;
      if (own != client.end()) row["agree"] = a - b == static_cast<double>(own->second);
    }
    out.push_back(row);
  }
  return out;
}

}  // namespace shardwise::loadgen
