#include "common/logging.h"

#include <fmt/chrono.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace shardwise {
namespace {

// What the formatter shows; written at start-up (flag parsing, MPI start), read under the mutex.
struct LogSettings {
  std::mutex mutex;
  bool json = false;
  int rank = -1;
  int replica = -1;
};

LogSettings& settings() {
  static LogSettings s;
  return s;
}

class JsonFormatter final : public spdlog::formatter {
 public:
  JsonFormatter(int rank, int replica) : rank_(rank), replica_(replica) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string line = json_log_line(msg, rank_, replica_);
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(rank_, replica_);
  }

 private:
  const int rank_;
  const int replica_;
};

void apply(LogSettings& s) {
  if (s.json) {
    log()->set_formatter(std::make_unique<JsonFormatter>(s.rank, s.replica));
  } else if (s.rank >= 0) {
    log()->set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S.%e] [rank {}] [%^%l%$] %v", s.rank));
  } else {
    log()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  }
}

}  // namespace

std::shared_ptr<spdlog::logger> log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto created = spdlog::stderr_color_mt("shardwise");
    created->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
    return created;
  }();
  return logger;
}

bool set_log_level(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (parsed == spdlog::level::off && level != "off") return false;
  log()->set_level(parsed);
  return true;
}

bool set_log_format(std::string_view format) {
  if (format != "text" && format != "json") return false;
  LogSettings& s = settings();
  std::lock_guard lock(s.mutex);
  s.json = format == "json";
  apply(s);
  return true;
}

void set_log_rank(int rank, int replica) {
  LogSettings& s = settings();
  std::lock_guard lock(s.mutex);
  s.rank = rank;
  s.replica = replica;
  apply(s);
}

std::string json_log_line(const spdlog::details::log_msg& msg, int rank, int replica) {
  const auto since_epoch = msg.time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  nlohmann::ordered_json line;
  line["time"] = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", fmt::gmtime(whole), millis.count());
  const auto level = spdlog::level::to_string_view(msg.level);
  line["level"] = std::string(level.data(), level.size());
  line["rank"] = rank >= 0 ? nlohmann::ordered_json(rank) : nlohmann::ordered_json(nullptr);
  line["replica"] =
      replica >= 0 ? nlohmann::ordered_json(replica) : nlohmann::ordered_json(nullptr);
  line["message"] = std::string(msg.payload.data(), msg.payload.size());
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace shardwise
