// The figures of a run: percentiles, per-metric distributions, throughput and goodput.
#pragma once

#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/request.h"
#include "common/status.h"

namespace shardwise::loadgen {

// The q-th percentile (q in [0, 100]) with linear interpolation between the closest ranks
// (numpy's default): rank q/100 * (n - 1) of the sorted values. NaN for no values.
double percentile(std::vector<double> values, double q);

struct Distribution {
  size_t count = 0;
  double mean = 0, median = 0, p90 = 0, p99 = 0, min = 0, max = 0;  // seconds
};
Distribution describe(const std::vector<double>& values);

// Service-level objectives for goodput; unset ones are infinite.
struct Slo {
  static constexpr double kNone = std::numeric_limits<double>::infinity();
  double ttft_s = kNone;
  double tpot_s = kNone;
  double e2e_s = kNone;
  bool any() const { return ttft_s != kNone || tpot_s != kNone || e2e_s != kNone; }
};
// "ttft=200ms,tpot=50ms" (units ms, s or us; a bare number is milliseconds).
StatusOr<Slo> parse_slo(std::string_view text);
// A finished request meets the SLO when each of its figures is within bounds; a request of one
// output token has no TPOT and meets that bound.
bool meets_slo(const RequestResult& result, const Slo& slo);

struct Summary {
  int64_t sent = 0, finished = 0, errors = 0;
  std::map<std::string, int64_t> errors_by_code;  // "UNAVAILABLE" -> 3
  double duration_s = 0;                          // first send to last completion
  int64_t input_tokens = 0, output_tokens = 0;    // every request's, failed ones included
  // Messages that carried tokens: output_tokens / messages above 1 means the server sent
  // several tokens at once (it batches those a slow client has not taken yet).
  int64_t messages = 0;
  double request_throughput = 0;      // finished requests / s
  double output_throughput = 0;       // output tokens / s
  double total_token_throughput = 0;  // (input + output) tokens / s
  Distribution ttft, tpot, itl, e2e;  // over finished requests
  bool has_slo = false;
  int64_t good_requests = 0;  // finished and meeting the SLO
  double goodput = 0;         // good requests / s
};
Summary summarize(const std::vector<RequestResult>& results, const Slo& slo);

nlohmann::json to_json(const Distribution& d);
nlohmann::json to_json(const Summary& s);

}  // namespace shardwise::loadgen
