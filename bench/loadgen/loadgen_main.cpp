// shardwise-loadgen: drives a coordinator (or any OpenAI-compatible server) with a seeded
// workload at a fixed concurrency or request rate, and reports TTFT, TPOT, inter-token
// latency, end-to-end latency, throughput and goodput, beside the server's own token counts.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench/loadgen/client.h"
#include "bench/loadgen/load_runner.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/server_metrics.h"
#include "bench/loadgen/stats.h"
#include "bench/loadgen/workload.h"

namespace shardwise::loadgen {
namespace {

using json = nlohmann::json;

struct Options {
  ClientOptions client;
  std::string protocol = "grpc";
  LoadOptions load;
  int64_t warmup = 0;
  WorkloadOptions workload;
  std::string input_len = "128", output_len = "128";
  std::string slo;
  std::string metrics_url;  // default: the HTTP URL + /metrics; "none" skips scraping
  std::vector<std::string> server_counters;
  std::string out_json, out_csv, label;
  std::string progress = "auto";
  bool quiet = false;
};

void add_connection_options(CLI::App& app, Options& o) {
  app.add_option("--protocol", o.protocol, "grpc, completions (/v1/completions) or chat")
      ->capture_default_str();
  app.add_option("--grpc", o.client.grpc_address, "Coordinator gRPC address, HOST:PORT")
      ->capture_default_str();
  app.add_option("--http", o.client.http_url, "OpenAI HTTP base URL (also serves /metrics)")
      ->capture_default_str();
  app.add_flag("--tls", o.client.grpc_tls, "gRPC over TLS (with the system's roots)");
  app.add_option("--tls-ca", o.client.tls_ca_file, "Trust this PEM CA (or self-signed) certificate")
      ->check(CLI::ExistingFile);
  app.add_option("--api-key", o.client.api_key, "Sent as 'Authorization: Bearer KEY'")
      ->envname("SHARDWISE_API_KEY");
  app.add_option("--model", o.client.model, "Model name")->required();
  app.add_flag("!--no-stream", o.client.stream, "HTTP: one JSON body (only e2e is measured)");
  app.add_option("--temperature", o.client.temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str();
  app.add_option("--request-timeout", o.client.request_timeout_s, "Seconds before a request fails")
      ->capture_default_str();
}

void add_load_options(CLI::App& app, Options& o) {
  app.add_option("--concurrency", o.load.concurrency,
                 "Closed loop: requests in flight; with --rate: their cap (0: none)")
      ->capture_default_str();
  app.add_option("--rate", o.load.rate, "Open loop: requests per second (0: closed loop)")
      ->capture_default_str();
  app.add_option("--burstiness", o.load.burstiness,
                 "Gamma shape of the open loop's gaps: 1 Poisson, < 1 burstier")
      ->capture_default_str();
  app.add_option("--requests", o.load.requests, "Measured requests (0: until --duration)")
      ->capture_default_str();
  app.add_option("--duration", o.load.duration_s, "Seconds of sending (0: until --requests)")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Warm-up requests, sent first and left out of the figures")
      ->capture_default_str();
}

void add_workload_options(CLI::App& app, Options& o) {
  app.add_option("--workload", o.workload.kind, "random, shared-prefix or jsonl")
      ->capture_default_str();
  app.add_option("--input-len", o.input_len,
                 "Prompt tokens: N or MIN-MAX (shared-prefix: the question)")
      ->capture_default_str();
  app.add_option("--output-len", o.output_len, "Output tokens: N or MIN-MAX")
      ->capture_default_str();
  app.add_flag("--ignore-eos,!--no-ignore-eos", o.workload.ignore_eos,
               "Generate past EOS, so that the output length is exact (default on)");
  app.add_option("--vocab-size", o.workload.vocab_size, "Random token ids come from [3, N)")
      ->capture_default_str();
  app.add_option("--num-prefixes", o.workload.num_prefixes, "shared-prefix: system prompts")
      ->capture_default_str();
  app.add_option("--questions-per-prefix", o.workload.questions_per_prefix,
                 "shared-prefix: questions per system prompt")
      ->capture_default_str();
  app.add_option("--prefix-len", o.workload.prefix_len, "shared-prefix: tokens per system prompt")
      ->capture_default_str();
  app.add_option("--jsonl", o.workload.jsonl_path, "jsonl: the prompts file");
  app.add_option("--seed", o.workload.seed, "Seed of the prompts and the arrivals")
      ->capture_default_str();
}

void add_report_options(CLI::App& app, Options& o) {
  app.add_option("--slo", o.slo, "Goodput objectives, e.g. ttft=200ms,tpot=50ms[,e2e=5s]");
  app.add_option("--metrics", o.metrics_url, "Server /metrics URL ('none': do not scrape)");
  app.add_option("--server-counter", o.server_counters,
                 "QUANTITY=NAME: the server counter of output_tokens or input_tokens");
  app.add_option("--out", o.out_json, "Write the run's JSON document here");
  app.add_option("--csv", o.out_csv, "Append the run's CSV line here (header when new)");
  app.add_option("--label", o.label, "A tag stored with the results (e.g. the sweep point)");
  app.add_option("--progress", o.progress, "auto (on a terminal), on or off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_flag("--quiet", o.quiet, "Print no summary on stdout");
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

json load_average() {
  std::ifstream in("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  if (!(in >> one >> five >> fifteen)) return nullptr;
  return {one, five, fifteen};
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return text;
}

json config_json(const Options& o, const std::string& command) {
  return {{"command", command},
          {"label", o.label},
          {"protocol", o.protocol},
          {"model", o.client.model},
          {"grpc", o.client.grpc_address},
          {"http", o.client.http_url},
          {"tls", o.client.grpc_tls || !o.client.tls_ca_file.empty() ||
                      o.client.http_url.starts_with("https://")},
          {"stream", o.client.stream},
          {"temperature", o.client.temperature},
          {"concurrency", o.load.concurrency},
          {"rate", o.load.rate},
          {"burstiness", o.load.burstiness},
          {"requests", o.load.requests},
          {"duration_s", o.load.duration_s},
          {"warmup", o.warmup},
          {"seed", o.workload.seed},
          {"slo", o.slo},
          {"workload",
           {{"kind", o.workload.kind},
            {"input_len", o.input_len},
            {"output_len", o.output_len},
            {"ignore_eos", o.workload.ignore_eos},
            {"vocab_size", o.workload.vocab_size},
            {"num_prefixes", o.workload.num_prefixes},
            {"questions_per_prefix", o.workload.questions_per_prefix},
            {"prefix_len", o.workload.prefix_len},
            {"jsonl", o.workload.jsonl_path}}}};
}

// Validates the options and fills the parsed fields.
Status prepare(Options& o) {
  SW_ASSIGN_OR_RETURN(o.client.protocol, parse_protocol(o.protocol));
  SW_ASSIGN_OR_RETURN(o.workload.input, parse_length_range(o.input_len));
  SW_ASSIGN_OR_RETURN(o.workload.output, parse_length_range(o.output_len));
  o.workload.forms = o.client.protocol == Protocol::kGrpc          ? PromptForms::kAll
                     : o.client.protocol == Protocol::kCompletions ? PromptForms::kIdsOrText
                                                                   : PromptForms::kTextOrChat;
  o.load.seed = o.workload.seed;
  if (o.warmup < 0) return invalid_argument("--warmup must not be negative");
  if (o.client.request_timeout_s <= 0) return invalid_argument("--request-timeout must be > 0");
  if (o.metrics_url.empty()) o.metrics_url = o.client.http_url + "/metrics";
  o.load.progress = o.progress == "on" || (o.progress == "auto" && isatty(STDERR_FILENO));
  return check_load_options(o.load);
}

struct Measured {
  std::vector<RequestResult> results;
  double wall_s = 0, cpu_s = 0;
};

json server_section(const Options& o, const StatusOr<Exposition>& before,
                    const StatusOr<Exposition>& after, const std::vector<CounterSpec>& counters,
                    const Summary& summary, const std::vector<RequestResult>& results) {
  json server = {{"metrics_url", o.metrics_url}};
  if (!before.ok() || !after.ok()) {
    server["error"] = (before.ok() ? after.status() : before.status()).to_string();
    return server;
  }
  int64_t finished_input = 0;  // a server counts the prompts of requests it ran
  for (const RequestResult& r : results) finished_input += r.ok() ? r.input_tokens : 0;
  server["counters"] = compare_counters(
      *before, *after, counters, o.client.model,
      {{"output_tokens", summary.output_tokens}, {"input_tokens", finished_input}});
  return server;
}

int run(Options& o, const std::string& command) {
  if (Status status = prepare(o); !status.ok()) {
    std::cerr << "shardwise-loadgen: " << status.message() << "\n";
    return 2;
  }
  StatusOr<Slo> slo = o.slo.empty() ? StatusOr<Slo>(Slo()) : parse_slo(o.slo);
  StatusOr<Workload> workload = Workload::create(o.workload);
  StatusOr<std::vector<CounterSpec>> counters =
      override_counters(default_counters(), o.server_counters);
  const Clock::time_point zero = Clock::now();
  StatusOr<std::unique_ptr<Client>> client = make_client(o.client, zero);
  for (const Status& s : {slo.status(), workload.status(), counters.status(), client.status()}) {
    if (s.ok()) continue;
    std::cerr << "shardwise-loadgen: " << s.message() << "\n";
    return 2;
  }
  json report = {{"tool", "shardwise-loadgen"},
                 {"started_at", now_utc()},
                 {"config", config_json(o, command)}};
  report["machine"] = {{"cores", std::thread::hardware_concurrency()},
                       {"load_average_start", load_average()}};
  std::vector<RequestResult> warmup;
  if (o.warmup > 0) {
    LoadOptions w = o.load;
    w.requests = o.warmup;
    w.duration_s = 0;
    w.name = "warm-up";
    warmup = run_phase(
        **client, [&](int64_t i) { return workload->warmup_request(i); }, w, zero);
  }
  const bool scraping = o.metrics_url != "none";
  StatusOr<Exposition> before = scraping ? scrape(o.metrics_url, o.client) : Exposition();
  LoadOptions m = o.load;
  m.name = "measured";
  Measured measured;
  const double cpu0 = cpu_seconds();
  const Clock::time_point t0 = Clock::now();
  measured.results = run_phase(
      **client, [&](int64_t i) { return workload->request(i); }, m, zero);
  measured.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  measured.cpu_s = cpu_seconds() - cpu0;
  StatusOr<Exposition> after =
      scraping && before.ok() ? scrape_settled(o.metrics_url, o.client, *counters, o.client.model)
                              : Exposition();
  const Summary summary = summarize(measured.results, *slo);
  report["summary"] = to_json(summary);
  const Summary warm = summarize(warmup, Slo());
  report["warmup"] = {{"sent", warm.sent}, {"finished", warm.finished}, {"errors", warm.errors}};
  if (scraping) {
    report["server"] = server_section(o, before, after, *counters, summary, measured.results);
  }
  report["client"] = {{"cpu_s", measured.cpu_s},
                      {"wall_s", measured.wall_s},
                      {"cpu_utilization", measured.cpu_s / std::max(measured.wall_s, 1e-9)},
                      {"output_tokens_per_cpu_s", static_cast<double>(summary.output_tokens) /
                                                      std::max(measured.cpu_s, 1e-9)}};
  report["machine"]["load_average_end"] = load_average();
  json rows = json::array();
  for (const RequestResult& r : measured.results) rows.push_back(result_row(r));
  report["requests"] = std::move(rows);
  if (Status s = write_outputs(report, o.out_json, o.out_csv); !s.ok()) {
    std::cerr << "shardwise-loadgen: " << s.message() << "\n";
    return 1;
  }
  if (!o.quiet) std::cout << text_summary(report) << std::flush;
  return 0;
}

}  // namespace
}  // namespace shardwise::loadgen

int main(int argc, char** argv) {
  CLI::App app{
      "shardwise-loadgen: load a coordinator over gRPC or OpenAI HTTP and measure TTFT, TPOT, "
      "inter-token latency, throughput and goodput.\n"
      "  shardwise-loadgen --model stories260K --grpc 127.0.0.1:50051 --http "
      "http://127.0.0.1:8000 --concurrency 16 --requests 200 --out run.json"};
  shardwise::loadgen::Options options;
  shardwise::loadgen::add_connection_options(app, options);
  shardwise::loadgen::add_load_options(app, options);
  shardwise::loadgen::add_workload_options(app, options);
  shardwise::loadgen::add_report_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is not an error; every bad flag exits 2
  }
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  return shardwise::loadgen::run(options, command);
}
