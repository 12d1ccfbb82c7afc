#include "bench/loadgen/stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

namespace shardwise::loadgen {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double rank = q / 100.0 * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = rank - static_cast<double>(below);
  return values[below] + (values[above] - values[below]) * fraction;
}

Distribution describe(const std::vector<double>& values) {
  Distribution d;
  d.count = values.size();
  if (values.empty()) return d;
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(d.count);
  d.median = percentile(values, 50);
  d.p90 = percentile(values, 90);
  d.p99 = percentile(values, 99);
  auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  d.min = *lo;
  d.max = *hi;
  return d;
}

namespace {

StatusOr<double> parse_seconds(std::string_view key, std::string_view text) {
  double scale = 1e-3;  // a bare number is milliseconds, as in vLLM's --goodput
  for (auto [suffix, factor] :
       {std::pair{"ms", 1e-3}, std::pair{"us", 1e-6}, std::pair{"s", 1.0}}) {
    if (text.ends_with(suffix)) {
      text.remove_suffix(std::string_view(suffix).size());
      scale = factor;
      break;
    }
  }
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !(value > 0)) {
    return invalid_argument("--slo {}: expected a positive time such as 200ms, got '{}'", key,
                            text);
  }
  return value * scale;
}

std::string error_code(const std::string& error) {
  const size_t colon = error.find(':');
  return colon == std::string::npos ? error : error.substr(0, colon);
}

}  // namespace

StatusOr<Slo> parse_slo(std::string_view text) {
  Slo slo;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return invalid_argument("--slo: expected KEY=TIME, got '{}'", item);
    }
    const std::string_view key = item.substr(0, eq);
    double* target = key == "ttft"   ? &slo.ttft_s
                     : key == "tpot" ? &slo.tpot_s
                     : key == "e2e"  ? &slo.e2e_s
                                     : nullptr;
    if (target == nullptr) {
      return invalid_argument("--slo: unknown key '{}' (ttft, tpot or e2e)", key);
    }
    SW_ASSIGN_OR_RETURN(*target, parse_seconds(key, item.substr(eq + 1)));
  }
  return slo;
}

bool meets_slo(const RequestResult& r, const Slo& slo) {
  if (!r.ok()) return false;
  const double tpot = r.tpot_s();
  return r.ttft_s <= slo.ttft_s && (tpot < 0 || tpot <= slo.tpot_s) && r.e2e_s <= slo.e2e_s;
}

Summary summarize(const std::vector<RequestResult>& results, const Slo& slo) {
  Summary s;
  std::vector<double> ttft, tpot, itl, e2e;
  double first = std::numeric_limits<double>::infinity(), last = 0;
  for (const RequestResult& r : results) {
    ++s.sent;
    s.input_tokens += r.input_tokens;
    s.output_tokens += r.output_tokens;
    s.messages += r.messages;
    first = std::min(first, r.start_s);
    last = std::max(last, r.start_s + r.e2e_s);
    if (!r.ok()) {
      ++s.errors;
      ++s.errors_by_code[error_code(r.error)];
      continue;
    }
    ++s.finished;
    if (r.ttft_s >= 0) ttft.push_back(r.ttft_s);
    if (r.tpot_s() >= 0) tpot.push_back(r.tpot_s());
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
    e2e.push_back(r.e2e_s);
    if (slo.any() && meets_slo(r, slo)) ++s.good_requests;
  }
  s.duration_s = results.empty() ? 0 : last - first;
  if (s.duration_s > 0) {
    s.request_throughput = static_cast<double>(s.finished) / s.duration_s;
    s.output_throughput = static_cast<double>(s.output_tokens) / s.duration_s;
    s.total_token_throughput = static_cast<double>(s.input_tokens + s.output_tokens) / s.duration_s;
    s.goodput = static_cast<double>(s.good_requests) / s.duration_s;
  }
  s.has_slo = slo.any();
  s.ttft = describe(ttft);
  s.tpot = describe(tpot);
  s.itl = describe(itl);
  s.e2e = describe(e2e);
  return s;
}

nlohmann::json to_json(const Distribution& d) {
  if (d.count == 0) return {{"count", 0}};
  return {{"count", d.count}, {"mean", d.mean}, {"median", d.median}, {"p90", d.p90},
          {"p99", d.p99},     {"min", d.min},   {"max", d.max}};
}

nlohmann::json to_json(const Summary& s) {
  nlohmann::json out = {
      {"sent", s.sent},
      {"finished", s.finished},
      {"errors", s.errors},
      {"errors_by_code", s.errors_by_code},
      {"duration_s", s.duration_s},
      {"input_tokens", s.input_tokens},
      {"output_tokens", s.output_tokens},
      {"messages", s.messages},
      {"tokens_per_message",
       s.messages > 0 ? static_cast<double>(s.output_tokens) / static_cast<double>(s.messages)
                      : 0.0},
      {"request_throughput", s.request_throughput},
      {"output_throughput", s.output_throughput},
      {"total_token_throughput", s.total_token_throughput},
      {"ttft_s", to_json(s.ttft)},
      {"tpot_s", to_json(s.tpot)},
      {"itl_s", to_json(s.itl)},
      {"e2e_s", to_json(s.e2e)}};
  if (s.has_slo) {
    out["good_requests"] = s.good_requests;
    out["goodput"] = s.goodput;
  }
  return out;
}

}  // namespace shardwise::loadgen
