#include "bench/loadgen/report.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace shardwise::loadgen {
namespace {

using json = nlohmann::json;

double micro(double seconds) { return std::round(seconds * 1e6) / 1e6; }

// The value at `path` ("summary/ttft_s/median") or null.
const json* find(const json& root, std::initializer_list<const char*> path) {
  const json* node = &root;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
  }
  return node->is_null() ? nullptr : node;
}

std::string field(const json& root, std::initializer_list<const char*> path, double scale = 1) {
  const json* v = find(root, path);
  if (v == nullptr) return "";
  if (v->is_number_float()) return fmt::format("{:.6g}", v->get<double>() * scale);
  if (v->is_number()) return fmt::format("{}", v->get<int64_t>());
  if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
  std::string text = v->get<std::string>();
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

const json* output_counter(const json& report) {
  const json* counters = find(report, {"server", "counters"});
  if (counters == nullptr || !counters->is_array()) return nullptr;
  for (const json& c : *counters) {
    if (c.value("quantity", "") == "output_tokens" && !c["metric"].is_null()) return &c;
  }
  return nullptr;
}

std::string ms(const json& report, const char* metric, const char* stat) {
  return field(report, {"summary", metric, stat}, 1e3);
}

}  // namespace

json result_row(const RequestResult& r) {
  json itl = json::array();
  for (double gap : r.itl_s) itl.push_back(micro(gap));
  json row = {{"index", r.index},
              {"start_s", micro(r.start_s)},
              {"ttft_s", r.ttft_s < 0 ? json(nullptr) : json(micro(r.ttft_s))},
              {"e2e_s", micro(r.e2e_s)},
              {"tpot_s", r.tpot_s() < 0 ? json(nullptr) : json(micro(r.tpot_s()))},
              {"itl_s", itl},
              {"messages", r.messages},
              {"input_tokens", r.input_tokens},
              {"output_tokens", r.output_tokens},
              {"finish_reason", r.finish_reason},
              {"error", r.error}};
  if (r.scheduled_s >= 0) row["scheduled_s"] = micro(r.scheduled_s);
  return row;
}

std::string csv_header() {
  return "label,protocol,model,concurrency,rate,input_len,output_len,sent,finished,errors,"
         "duration_s,request_throughput,output_throughput,ttft_p50_ms,ttft_p99_ms,tpot_p50_ms,"
         "tpot_p99_ms,itl_p50_ms,itl_p99_ms,e2e_p50_ms,e2e_p99_ms,goodput,server_output_tokens,"
         "output_tokens,counts_agree";
}

std::string csv_line(const json& report) {
  const json* counter = output_counter(report);
  const std::vector<std::string> fields = {field(report, {"config", "label"}),
                                           field(report, {"config", "protocol"}),
                                           field(report, {"config", "model"}),
                                           field(report, {"config", "concurrency"}),
                                           field(report, {"config", "rate"}),
                                           field(report, {"config", "workload", "input_len"}),
                                           field(report, {"config", "workload", "output_len"}),
                                           field(report, {"summary", "sent"}),
                                           field(report, {"summary", "finished"}),
                                           field(report, {"summary", "errors"}),
                                           field(report, {"summary", "duration_s"}),
                                           field(report, {"summary", "request_throughput"}),
                                           field(report, {"summary", "output_throughput"}),
                                           ms(report, "ttft_s", "median"),
                                           ms(report, "ttft_s", "p99"),
                                           ms(report, "tpot_s", "median"),
                                           ms(report, "tpot_s", "p99"),
                                           ms(report, "itl_s", "median"),
                                           ms(report, "itl_s", "p99"),
                                           ms(report, "e2e_s", "median"),
                                           ms(report, "e2e_s", "p99"),
                                           field(report, {"summary", "goodput"}),
                                           counter ? field(*counter, {"server"}) : "",
                                           field(report, {"summary", "output_tokens"}),
                                           counter ? field(*counter, {"agree"}) : ""};
  return fmt::format("{}", fmt::join(fields, ","));
}

std::string text_summary(const json& report) {
  const json& s = report["summary"];
  std::string out = fmt::format(
      "requests: {} sent, {} finished, {} errors in {:.2f} s\n"
      "throughput: {:.2f} requests/s, {:.1f} output tokens/s, {:.1f} total tokens/s "
      "({:.2f} tokens/message)\n",
      s["sent"].get<int64_t>(), s["finished"].get<int64_t>(), s["errors"].get<int64_t>(),
      s["duration_s"].get<double>(), s["request_throughput"].get<double>(),
      s["output_throughput"].get<double>(), s["total_token_throughput"].get<double>(),
      s["tokens_per_message"].get<double>());
  for (const char* metric : {"ttft_s", "tpot_s", "itl_s", "e2e_s"}) {
    const json& d = s[metric];
    if (d["count"].get<size_t>() == 0) continue;
    out += fmt::format("{:<4} ms: mean {:.2f}  median {:.2f}  p90 {:.2f}  p99 {:.2f}\n",
                       std::string(metric).substr(0, std::string(metric).size() - 2),
                       d["mean"].get<double>() * 1e3, d["median"].get<double>() * 1e3,
                       d["p90"].get<double>() * 1e3, d["p99"].get<double>() * 1e3);
  }
  if (s.contains("goodput")) {
    out += fmt::format("goodput: {:.2f} requests/s ({} of {} met the SLO)\n",
                       s["goodput"].get<double>(), s["good_requests"].get<int64_t>(),
                       s["finished"].get<int64_t>());
  }
  if (const json* errors = find(report, {"summary", "errors_by_code"});
      errors && !errors->empty()) {
    out += "errors: " + errors->dump() + "\n";
  }
  if (const json* counters = find(report, {"server", "counters"})) {
    for (const json& c : *counters) {
      if (c["metric"].is_null()) continue;
      out += fmt::format("server {}: {} ({}); loadgen: {}{}\n", c["quantity"].get<std::string>(),
                         c["server"].get<double>(), c["metric"].get<std::string>(),
                         c.value("client", int64_t{0}),
                         c.value("agree", false) ? " (agree)" : "  ** DISAGREE **");
    }
  }
  if (const json* error = find(report, {"server", "error"})) {
    out += "server metrics: " + error->get<std::string>() + "\n";
  }
  return out;
}

Status write_outputs(const json& report, const std::string& json_path,
                     const std::string& csv_path) {
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << report.dump(1) << "\n";
    if (!out) return unavailable("cannot write {}", json_path);
  }
  if (!csv_path.empty()) {
    const bool fresh = !std::filesystem::exists(csv_path) || std::filesystem::is_empty(csv_path);
    std::ofstream out(csv_path, std::ios::app);
    if (fresh) out << csv_header() << "\n";
    out << csv_line(report) << "\n";
    if (!out) return unavailable("cannot write {}", csv_path);
  }
  return ok_status();
}

}  // namespace shardwise::loadgen
