// The OpenAI HTTP client: /v1/completions and /v1/chat/completions with SSE streaming, on a
// pool of threads that grows to the number of requests in flight (cpp-httplib is blocking).
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "bench/loadgen/client.h"
#include "bench/loadgen/openai_response.h"
#include "bench/loadgen/sse.h"

namespace shardwise::loadgen {
namespace {

using json = nlohmann::json;

struct Url {
  std::string origin;  // "http://127.0.0.1:8000"
  std::string path;    // "" or "/prefix"
};

StatusOr<Url> split_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos ||
      (url.compare(0, scheme, "http") != 0 && url.compare(0, scheme, "https") != 0)) {
    return invalid_argument("'{}': expected an http:// or https:// URL", url);
  }
  const size_t slash = url.find('/', scheme + 3);
  Url out{url.substr(0, slash), slash == std::string::npos ? "" : url.substr(slash)};
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  return out;
}

std::unique_ptr<httplib::Client> connect(const Url& url, const std::string& tls_ca_file,
                                         double timeout_s) {
  auto client = std::make_unique<httplib::Client>(url.origin);
  const auto seconds = static_cast<time_t>(timeout_s);
  client->set_connection_timeout(10);
  client->set_read_timeout(seconds, static_cast<time_t>((timeout_s - seconds) * 1e6));
  client->set_write_timeout(10);
  client->set_keep_alive(true);
  if (!tls_ca_file.empty()) client->set_ca_cert_path(tls_ca_file.c_str());
  return client;
}

httplib::Headers headers(const std::string& api_key) {
  httplib::Headers out;
  if (!api_key.empty()) out.emplace("Authorization", "Bearer " + api_key);
  return out;
}

json request_body(const RequestSpec& spec, const ClientOptions& o) {
  json body = {{"model", o.model},
               {"max_tokens", spec.max_tokens},
               {"temperature", o.temperature},
               {"ignore_eos", spec.ignore_eos},
               {"seed", spec.index},
               {"stream", o.stream}};
  if (o.stream) body["stream_options"] = {{"include_usage", true}};
  if (o.protocol == Protocol::kChat) {
    json messages = json::array();
    for (const ChatTurn& t : spec.messages) {
      messages.push_back({{"role", t.role}, {"content", t.content}});
    }
    body["messages"] = messages;
  } else if (!spec.prompt_ids.empty()) {
    body["prompt"] = spec.prompt_ids;
  } else {
    body["prompt"] = spec.prompt_text;
  }
  return body;
}

class HttpClient final : public Client {
 public:
  HttpClient(ClientOptions options, Url url, Clock::time_point zero)
      : options_(std::move(options)), url_(std::move(url)), zero_(zero) {}

  ~HttpClient() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void start(const RequestSpec& spec, DoneFn done) override {
    std::lock_guard lock(mutex_);
    jobs_.push_back({spec, std::move(done)});
    if (jobs_.size() > idle_) {
      threads_.emplace_back([this] { work(); });
    } else {
      ready_.notify_one();
    }
  }

 private:
  struct Job {
    RequestSpec spec;
    DoneFn done;
  };

  void work() {
    std::unique_ptr<httplib::Client> http =
        connect(url_, options_.tls_ca_file, options_.request_timeout_s);
    while (true) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        ++idle_;
        ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty()) return;  // stopping, with nothing left to send
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      RequestResult result = send(*http, job.spec);
      job.done(std::move(result));
    }
  }

  RequestResult send(httplib::Client& http, const RequestSpec& spec) const {
    const Protocol protocol = options_.protocol;
    ResultRecorder recorder(spec, zero_);
    OpenAiOutcome outcome;
    int status = 0;
    std::string body;
    SseParser events([&](const std::string& data) {
      if (data == "[DONE]") return;
      json chunk = json::parse(data, nullptr, /*allow_exceptions=*/false);
      if (chunk.is_discarded()) {
        outcome.malformed = true;
        return;
      }
      if (outcome.read(chunk, protocol)) recorder.received(1);
    });
    httplib::Request request;
    request.method = "POST";
    request.path =
        url_.path + (protocol == Protocol::kChat ? "/v1/chat/completions" : "/v1/completions");
    request.headers = headers(options_.api_key);
    request.body = request_body(spec, options_).dump();
    request.set_header("Content-Type", "application/json");
    request.response_handler = [&](const httplib::Response& response) {
      status = response.status;
      return true;
    };
    request.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (status == 200 && options_.stream) {
        events.feed(std::string_view(data, n));
      } else {
        body.append(data, n);
      }
      return true;
    };
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    recorder.sent();
    if (!http.send(request, response, error)) {
      return recorder.fail("UNAVAILABLE: " + httplib::to_string(error));
    }
    if (status != 200) {
      return recorder.fail(openai_error_text(json::parse(body, nullptr, false), status));
    }
    if (!options_.stream) outcome.read(json::parse(body, nullptr, false), protocol);
    if (!outcome.error.empty()) return recorder.fail(outcome.error);
    if (outcome.malformed) return recorder.fail("INTERNAL: a malformed response");
    if (outcome.finish_reason.empty()) {
      return recorder.fail("INTERNAL: the response ended without a finish reason");
    }
    return recorder.finish(outcome.finish_reason, outcome.prompt_tokens, outcome.completion_tokens);
  }

  const ClientOptions options_;
  const Url url_;
  const Clock::time_point zero_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;              // guarded by mutex_
  size_t idle_ = 0;                   // guarded by mutex_: threads waiting for a job
  bool stopping_ = false;             // guarded by mutex_
  std::vector<std::thread> threads_;  // guarded by mutex_
};

}  // namespace

StatusOr<std::unique_ptr<Client>> make_http_client(const ClientOptions& options,
                                                   Clock::time_point zero) {
  SW_ASSIGN_OR_RETURN(Url url, split_url(options.http_url));
  return std::unique_ptr<Client>(std::make_unique<HttpClient>(options, std::move(url), zero));
}

StatusOr<std::string> http_get(const std::string& url, const std::string& tls_ca_file,
                               const std::string& api_key) {
  SW_ASSIGN_OR_RETURN(Url parts, split_url(url));
  std::unique_ptr<httplib::Client> http = connect(parts, tls_ca_file, 10);
  httplib::Result result = http->Get(parts.path.empty() ? "/" : parts.path, headers(api_key));
  if (!result) return unavailable("GET {}: {}", url, httplib::to_string(result.error()));
  if (result->status != 200) return unavailable("GET {}: HTTP {}", url, result->status);
  return result->body;
}

}  // namespace shardwise::loadgen
