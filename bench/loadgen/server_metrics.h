// The server's own counts beside the load generator's: /metrics is scraped before and after
// the measured phase, and each tracked quantity's counter delta (summed over the series of the
// model under test) is compared with what the load generator counted. Counters are found by
// name, the first of a list that the server exposes, so that new counters (or another server's)
// need only a name: --server-counter output_tokens=NAME.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/loadgen/client.h"
#include "bench/loadgen/prometheus.h"

namespace shardwise::loadgen {

struct CounterSpec {
  std::string quantity;            // "output_tokens" or "input_tokens"
  std::vector<std::string> names;  // candidates, first exposed wins
};
// shardwise's (today's and issue 17's names) and vLLM's token counters.
std::vector<CounterSpec> default_counters();
// Applies "QUANTITY=NAME" overrides.
StatusOr<std::vector<CounterSpec>> override_counters(std::vector<CounterSpec> counters,
                                                     const std::vector<std::string>& overrides);

StatusOr<Exposition> scrape(const std::string& url, const ClientOptions& options);
// Scrapes until the tracked counters read the same twice in a row, 100 ms apart (at most 3 s):
// a server may count a request's tokens just after its last message went out.
StatusOr<Exposition> scrape_settled(const std::string& url, const ClientOptions& options,
                                    const std::vector<CounterSpec>& counters,
                                    const std::string& model);

// [{"quantity", "metric", "before", "after", "server", "client", "agree"}], "metric": null
// when the server exposes none of the names. `client` maps quantity -> the load generator's
// count.
nlohmann::json compare_counters(const Exposition& before, const Exposition& after,
                                const std::vector<CounterSpec>& counters, const std::string& model,
                                const std::map<std::string, int64_t>& client);

}  // namespace shardwise::loadgen
