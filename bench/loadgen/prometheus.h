// The Prometheus text exposition format, read back: enough to sum a counter's series by name
// and label, so that the load generator can set a server's counts beside its own.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace shardwise::loadgen {

struct MetricSample {
  std::string name;                           // shardwise_generated_tokens_total
  std::map<std::string, std::string> labels;  // {"model": "stories260K"}
  double value = 0;
};

struct Exposition {
  std::vector<MetricSample> samples;
  std::set<std::string> families;  // names declared by # HELP / # TYPE, even without samples
};

// INVALID_ARGUMENT naming the line for a sample that does not parse.
StatusOr<Exposition> parse_exposition(std::string_view text);

// The sum of `name`'s samples whose label `label` is `value` (or that lack the label; every
// sample when `label` is empty). nullopt when the exposition neither declares nor has `name`.
std::optional<double> sum_samples(const Exposition& exposition, const std::string& name,
                                  const std::string& label = {}, const std::string& value = {});

}  // namespace shardwise::loadgen
