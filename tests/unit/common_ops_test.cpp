// The operating pieces of common/: HOST:PORT parsing and the listen probe, JSON log lines,
// histograms, the YAML --config reader and the exit-code convention of parse_command_line.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/command_line.h"
#include "common/histogram.h"
#include "common/logging.h"
#include "common/net_address.h"
#include "common/version.h"
#include "common/yaml_config.h"

namespace shardwise {
namespace {

TEST(HostPort, ParsesHostsPortsAndIpv6Brackets) {
  auto plain = parse_host_port("node7:50061", "--listen");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->host, "node7");
  EXPECT_EQ(plain->port, 50061);
  auto v6 = parse_host_port("[::1]:8000", "--http");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:8000");
  auto bare = parse_host_optional_port("node7.example.com", "--advertise");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, -1);
  EXPECT_EQ(bare->to_string(), "node7.example.com");
  EXPECT_TRUE(is_wildcard_host("0.0.0.0") && is_wildcard_host("::"));
  EXPECT_FALSE(is_wildcard_host("127.0.0.1"));
  for (const char* bad : {"node7", "node7:", ":80", "node7:http", "node7:65536", "node7:-1", "[::1",
                          "[::1]80", "::1:80", "node7:80x"}) {
    auto parsed = parse_host_port(bad, "--listen");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("--listen"), std::string::npos);
  }
}

TEST(HostPort, TheProbeSaysWhenAPortIsTaken) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t length = sizeof(address);
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const HostPort taken{"127.0.0.1", ntohs(address.sin_port)};
  const Status probe = probe_listen(taken);
  EXPECT_EQ(probe.code(), StatusCode::kUnavailable);
  EXPECT_EQ(probe.message(), taken.to_string() + ": address already in use");
  EXPECT_EQ(why_cannot_listen(taken.to_string()), taken.to_string() + ": address already in use");
  close(listener);
  EXPECT_TRUE(probe_listen(taken).ok());
  EXPECT_EQ(why_cannot_listen("unix:/tmp/x"), "unix:/tmp/x");
  EXPECT_FALSE(probe_listen({"no-such-host.invalid", 80}).ok());
}

TEST(HostPort, TheLocalAddressTowardLoopbackIsLoopback) {
  auto local = local_address_toward({"127.0.0.1", 50051});
  ASSERT_TRUE(local.ok()) << local.status().to_string();
  EXPECT_EQ(*local, "127.0.0.1");
  EXPECT_FALSE(local_address_toward({"no-such-host.invalid", 1}).ok());
}

TEST(Logging, JsonLinesParseWhateverTheMessageHolds) {
  const std::string payload = "a \"quoted\"\nline\twith \xff bytes";
  spdlog::details::log_msg msg("shardwise", spdlog::level::warn, payload);
  const std::string line = json_log_line(msg, 3, -1);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["level"], "warning");
  EXPECT_EQ(parsed["rank"], 3);
  EXPECT_TRUE(parsed["replica"].is_null());
  EXPECT_EQ(parsed["message"], "a \"quoted\"\nline\twith \xEF\xBF\xBD bytes");
  const std::string time = parsed["time"];
  ASSERT_EQ(time.size(), 24u) << time;  // 2025-05-20T08:15:02.042Z
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time.back(), 'Z');
  EXPECT_TRUE(set_log_format("json") && set_log_format("text"));
  EXPECT_FALSE(set_log_format("yaml"));
}

TEST(Histogram, CountsEachValueInTheFirstBucketThatHoldsIt) {
  Histogram h({0.1, 1});
  for (double v : {0.05, 0.1, 0.5, 1.0, 7.0}) h.observe(v);
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{2, 2, 1}));  // le semantics: 0.1 is in <= 0.1
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 8.65);
  EXPECT_EQ(Histogram().bounds(), latency_bounds_seconds());
}

struct ConfiguredApp {
  CLI::App app{"test"};
  bool print_config = false;
  std::string grpc = "0.0.0.0:1";
  std::string tls_cert;
  std::vector<std::string> models;
  int threads = 0;

  ConfiguredApp() {
    add_yaml_config(app, print_config);
    app.add_option("--grpc", grpc);
    app.add_option("--tls-cert", tls_cert);
    app.add_option("--models", models);
    app.add_option("--threads", threads);
  }
  // Parses `yaml` as the --config file plus `args`; the exit code parse_command_line gives.
  std::optional<int> parse(const std::string& yaml, std::vector<std::string> args = {}) {
    const std::string path = ::testing::TempDir() + "/config.yaml";
    std::ofstream(path) << yaml;
    std::vector<std::string> words = {"test", "--config", path};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    return parse_command_line(app, static_cast<int>(argv.size()), argv.data());
  }
};

TEST(YamlConfig, KeysAreLongNamesAndUnknownOnesAreUsageErrors) {
  ConfiguredApp ok;
  EXPECT_EQ(ok.parse("grpc: 127.0.0.1:5\ntls: {cert: c.pem}\nmodels: [a, b]\n", {"--threads", "3"}),
            std::nullopt);
  EXPECT_EQ(ok.grpc, "127.0.0.1:5");
  EXPECT_EQ(ok.tls_cert, "c.pem");
  EXPECT_EQ(ok.models, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ok.threads, 3);
  const std::string printed = ok.app.config_to_str(true, false);
  EXPECT_NE(printed.find("tls-cert: c.pem"), std::string::npos) << printed;

  ConfiguredApp unknown;
  testing::internal::CaptureStderr();
  EXPECT_EQ(unknown.parse("grpc: x:1\nhttp_port: 8000\n"), kExitUsage);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("unknown key http-port in " + ::testing::TempDir() + "/config.yaml"),
            std::string::npos)
      << err;
  ConfiguredApp broken;
  testing::internal::CaptureStderr();
  EXPECT_EQ(broken.parse("[grpc: x"), kExitUsage);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("not valid YAML"), std::string::npos);
}

TEST(CommandLine, ExitCodesFollowOneConvention) {
  auto run = [](CLI::App& app, std::vector<std::string> words) {
    words.insert(words.begin(), "tool");
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    auto code = parse_command_line(app, static_cast<int>(argv.size()), argv.data());
    const std::string out = testing::internal::GetCapturedStdout();
    const std::string err = testing::internal::GetCapturedStderr();
    return std::tuple(code, out, err);
  };
  CLI::App app{"tool", "tool"};
  add_version_flag(app, "tool");
  app.require_subcommand(1);
  app.add_subcommand("generate", "");
  app.add_subcommand("tokenize", "")->callback([] { throw CLI::RuntimeError(1); });
  auto [version, out, _] = run(app, {"--version"});
  EXPECT_EQ(version, kExitOk);
  EXPECT_EQ(out.rfind("tool 0.", 0), 0u) << out;
  EXPECT_EQ(std::get<0>(run(app, {"generate"})), std::nullopt);
  EXPECT_EQ(std::get<0>(run(app, {"tokenize"})), kExitRuntimeFailure);
  auto [typo, _o, typo_err] = run(app, {"genrate"});
  EXPECT_EQ(typo, kExitUsage);
  EXPECT_NE(typo_err.find("unknown command 'genrate'; the commands are: generate tokenize"),
            std::string::npos)
      << typo_err;
  auto [flag, _o2, flag_err] = run(app, {"--bogus"});
  EXPECT_EQ(flag, kExitUsage);
  EXPECT_NE(flag_err.find("--bogus"), std::string::npos) << flag_err;
}

}  // namespace
}  // namespace shardwise
